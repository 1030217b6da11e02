"""F9 contract: an application checked field by field, the platform's wire names both ways,
the pull page, the status and core inputs, the hub messages' keys."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest

from contracts.ids import make_id_number
from contracts.transfer import (
    INTAKE,
    InsurancePeriod,
    Refusal,
    TransferApplication,
    certificate_lines,
    check_application,
    core_input,
    core_status_message,
    from_channel,
    from_wire,
    intake_message,
    parse_pull_output,
    platform_status_message,
    status_input,
    status_payload,
    to_wire,
)

ID = make_id_number(random.Random(5), born=date(1988, 8, 8), area="320102")
BASE: dict[str, Any] = {"application_no": "ZY2026112000001", "id_number": ID, "name": "王建国",
                        "source_division": "320102", "target_division": "310104",
                        "apply_date": "2026-11-20",
                        "periods": [{"begin_month": "201501", "end_month": "202610"}]}


def _fields(got: TransferApplication | list[Refusal]) -> list[str]:
    assert isinstance(got, list), got
    return [r.field for r in got]


def test_a_good_application_knows_its_direction_and_other_side() -> None:
    app = check_application(BASE)
    assert isinstance(app, TransferApplication)
    assert (app.direction, app.other_division) == ("out", "310104")
    back = check_application(BASE | {"source_division": "310104", "target_division": "320115"})
    assert isinstance(back, TransferApplication) and back.direction == "in"
    assert back.other_division == "310104"
    assert app.periods[0].months == 11 * 12 + 10


@pytest.mark.parametrize(("change", "field"), [
    ({"id_number": ID[:17] + ("0" if ID[17] != "0" else "1")}, "id_number"),
    ({"id_number": "12345"}, "id_number"),
    ({"target_division": "999999"}, "target_division"),
    ({"target_division": "31010"}, "target_division"),
    ({"target_division": "320105"}, "target_division"),  # within Nanjing
    ({"source_division": "310104", "target_division": "110105"}, "target_division"),
    ({"name": "张3"}, "name"),
    ({"application_no": "a b"}, "application_no"),
    ({"insutype": "999"}, "insutype"),
    ({"unit_credit_code": "91320106R8JM88BRJ0"}, "unit_credit_code"),
    ({"periods": [{"begin_month": "202612", "end_month": "202601"}]}, "periods.0.end_month"),
    ({"extra": "x"}, "extra"),
])
def test_a_bad_application_is_refused_naming_the_field(change: dict[str, Any],
                                                       field: str) -> None:
    got = check_application(BASE | change)
    assert field in _fields(got), got


def test_missing_fields_are_required() -> None:
    got = check_application({"application_no": "ZY0000001"})
    assert {"id_number", "name", "source_division", "target_division",
            "apply_date"} <= set(_fields(got))
    assert all(r.reason == "required" for r in got if isinstance(got, list))


def test_the_wire_names_go_both_ways() -> None:
    app = check_application(BASE | {"unit_credit_code": "91320106R8JM88BRJM"})
    assert isinstance(app, TransferApplication)
    wire = to_wire(app)
    assert wire["aply_no"] == app.application_no and wire["certno"] == ID
    assert (wire["out_admdvs"], wire["in_admdvs"], wire["psn_cert_type"]) == (
        "320102", "310104", "01")
    assert wire["insu_prd_list"][0]["begn_ym"] == "201501"
    again = check_application(from_wire(wire))
    assert again == app
    other_cert = from_wire(wire | {"psn_cert_type": "06"})
    assert "id_number" in _fields(check_application(other_cert))


def test_a_pull_page_is_read_or_refused() -> None:
    page = parse_pull_output({"list": [{"aply_no": "x"}], "next_cursor": "1", "more": "1"}, "0")
    assert page.more and page.next_cursor == "1" and len(page.items) == 1
    last = parse_pull_output({"list": [], "next_cursor": "7", "more": "0"}, "7")
    assert not last.more and last.items == ()
    for bad in (None, {"list": "x", "next_cursor": "1"}, {"list": [], "next_cursor": 5},
                {"list": [1], "next_cursor": "2"},
                {"list": [{}], "next_cursor": "0", "more": "1"}):
        with pytest.raises(ValueError):
            parse_pull_output(bad, "0")


def test_status_and_core_inputs_carry_the_decision() -> None:
    app = check_application(BASE)
    assert isinstance(app, TransferApplication)
    p = status_payload(app.as_dict(), "out_failed", reason_code="ARREARS",
                       reason_field="id_number", reason="arrears 12.00", source="platform")
    assert (p["status_code"], p["direction"], p["status_label"]) == ("12", "out", "转出失败")
    wire = status_input(p, serial="s1", application=to_wire(app))
    assert wire["serial"] == "s1" and wire["data"]["stas"] == "12"
    assert wire["data"]["fail_fld"] == "id_number" and "aply_info" in wire["data"]
    core = core_input(p, serial="s2")
    assert core["data"]["trans_type"] == "1" and core["data"]["fail_rea"] == "arrears 12.00"


def test_one_fact_per_application_and_status() -> None:
    app = check_application(BASE)
    assert isinstance(app, TransferApplication)
    a = intake_message(app.as_dict(), "platform")
    b = intake_message(app.as_dict() | {"remark": "again"}, "window")
    assert a.type == INTAKE and a.idempotency_key == b.idempotency_key
    p = status_payload(app.as_dict(), "out_approved")
    assert core_status_message(p).idempotency_key == core_status_message(
        p | {"reason": "x"}).idempotency_key
    assert core_status_message(p).idempotency_key != core_status_message(
        status_payload(app.as_dict(), "out_failed")).idempotency_key
    assert platform_status_message(p, application={"aply_no": "x"}).payload["application"]


def test_my_nanjing_transfer_out_becomes_an_application() -> None:
    d = from_channel("ab" * 16, {"id_number": ID, "name": "孙立新", "target_division": "310104",
                                 "unit_credit_code": "91320106R8JM88BRJM",
                                 "stop_date": "2026-11-30", "phone": "13851700005"},
                     received=date(2026, 11, 24))
    app = check_application(d)
    assert isinstance(app, TransferApplication)
    assert app.application_no == "MN" + "ab" * 16 and app.direction == "out"
    assert app.stop_date == date(2026, 11, 30) and app.source_division == "320100"


def test_the_certificate_says_who_from_where_to_where_and_how_long() -> None:
    app = check_application(BASE | {"target_division": "542521", "periods": [
        {"begin_month": "201501", "end_month": "201512", "unit_name": "南京紫金科技"},
        {"begin_month": "201601", "end_month": "201606"}]})
    assert isinstance(app, TransferApplication)
    facts, rows = certificate_lines(app, issued=date(2026, 11, 21))
    got = dict(facts)
    assert got["累计缴费月数"] == "18" and got["证件号码"] == ID
    assert got["转出地"] == "玄武区" and got["出具日期"] == "2026-11-21"
    assert rows[0] == ("201501-201512", "职工基本医疗保险", "12", "南京紫金科技")
    assert InsurancePeriod(begin_month="202001", end_month="202001").months == 1
