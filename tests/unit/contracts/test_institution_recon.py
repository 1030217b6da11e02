"""F14 contracts: 3201 totals refused with field and reason when they do not add up or
carry floats; the 3202 detail file round-trips (zip of a tab-separated txt) and is checked
against its totals; the diagnosis names each setl_id on one side only and each differing
field; the rule's decisions for local / 异地 / 跨省 单边帐."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts.errors import ValidationFailed
from contracts.institution_recon import (
    DayTotals,
    DetailRow,
    case_id,
    case_kind,
    check_detail,
    compare_totals,
    diagnose,
    money,
    read_detail_file,
    resolve_message,
    rule_action,
    scope_of,
    totals_of,
    write_detail_file,
)

DAY = date(2026, 11, 30)
CODE = "H32010200001"


def _row(sid: str, fee: str = "100.00", **kw: Any) -> DetailRow:
    f = Decimal(fee)
    return DetailRow(setl_id=sid, mdtrt_id="M" + sid, psn_no="P" + sid, medfee_sumamt=f,
                     fund_pay_sumamt=f - Decimal("30.00"), acct_pay=Decimal("10.00"),
                     cash_payamt=Decimal("20.00"), setl_time="2026-11-30 09:00:00", **kw)


def _totals(**kw: Any) -> dict[str, Any]:
    return {"fixmedins_code": CODE, "stmt_begndate": "2026-11-30",
            "stmt_enddate": "2026-11-30", "medfee_sumamt": "100.00",
            "fund_pay_sumamt": "70.00", "acct_pay": "10.00", "cash_payamt": "20.00",
            "fixmedins_setl_cnt": 1, **kw}


def _fields(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationFailed) as exc:
        DayTotals.parse(data)
    return [f for f, _ in exc.value.errors]


def test_totals_that_add_up_are_taken_fen_exact() -> None:
    t = DayTotals.parse(_totals())
    assert t.medfee_sumamt == Decimal("100.00") and t.day == DAY
    assert t.wire()["fund_pay_sumamt"] == "70.00"


@pytest.mark.parametrize(("change", "field"), [
    ({"cash_payamt": "19.00"}, "data.medfee_sumamt"),
    ({"acct_pay": 10.0}, "data.acct_pay"),
    ({"medfee_sumamt": "100.001"}, "data.medfee_sumamt"),
    ({"stmt_enddate": "2026-12-01"}, "data.stmt_enddate"),
    ({"fixmedins_code": "320100"}, "data.fixmedins_code"),
    ({"fixmedins_setl_cnt": 1.0}, "data.fixmedins_setl_cnt"),
])
def test_bad_totals_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    assert field in _fields(_totals(**change))


def test_money_refuses_floats_and_sub_fen() -> None:
    assert money("1.5") == Decimal("1.50")
    for bad in (1.5, True, "x", "0.001", "NaN"):
        with pytest.raises(ValueError):
            money(bad)


def test_the_detail_file_round_trips_and_is_checked_against_its_totals() -> None:
    rows = [_row("S1"), _row("S2", "50.00", chnl_type="1", insuplc_admdvs="110105")]
    name, raw = write_detail_file(CODE, DAY, rows)
    assert name == f"{CODE}_20261130.zip"
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        assert z.namelist() == [f"{CODE}_20261130.txt"]
        assert z.read(z.namelist()[0]).decode().count("\t") == 2 * 10
    assert read_detail_file(raw) == rows
    totals = totals_of(CODE, DAY, rows)
    assert check_detail(totals, rows) == []
    wrong = totals.model_copy(update={"fixmedins_setl_cnt": 3})
    assert [f for f, _ in check_detail(wrong, rows)] == ["data.fixmedins_setl_cnt"]


def test_a_bad_line_refuses_the_whole_file() -> None:
    _, raw = write_detail_file(CODE, DAY, [_row("S1")])
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        text = z.read(z.namelist()[0]).decode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x.txt", text + text.replace("100.00", "99.00", 1))
    with pytest.raises(ValidationFailed) as exc:
        read_detail_file(buf.getvalue())
    assert {f for f, _ in exc.value.errors} >= {"line 2.medfee_sumamt"}
    with pytest.raises(ValidationFailed):
        read_detail_file(b"not a zip")


def test_diagnosis_names_each_transaction_and_field() -> None:
    mine = [_row("S1"), _row("S2"), _row("S3", "80.00")]
    core = [_row("S1"), _row("S3", "90.00"), _row("S4")]
    d = diagnose(mine, core)
    assert d.matched == 1
    got = {f.setl_id: (f.kind, sorted(f.fields)) for f in d.findings}
    assert got == {"S2": ("institution_only", []), "S3": ("differs",
                   ["fund_pay_sumamt", "medfee_sumamt"]), "S4": ("core_only", [])}
    assert [f.setl_id for f in d.one_sided] == ["S2", "S4"]
    assert compare_totals(totals_of(CODE, DAY, mine), totals_of(CODE, DAY, core))
    assert compare_totals(totals_of(CODE, DAY, mine), totals_of(CODE, DAY, mine)) == {}


def test_the_rule_by_scope_side_and_age() -> None:
    now = datetime(2026, 11, 30, 12, 0, 0)
    assert scope_of("320106") == "local" and scope_of("320500") == "provincial"
    assert scope_of("110105") == "national"
    assert rule_action("institution_only", "local", "2026-11-30 09:00:00", now, 30) == "reverse"
    assert rule_action("institution_only", "local", "2026-11-30 11:50:00", now, 30) == "wait"
    assert rule_action("core_only", "provincial", "", now, 30) == "complete"
    assert rule_action("institution_only", "national", "2026-11-30 09:00:00", now,
                       30) == "caseworker"
    assert rule_action("differs", "local", "2026-11-30 09:00:00", now, 30) == "caseworker"


def test_a_resolution_is_one_message_per_case_and_action() -> None:
    case = {"id": case_id(CODE, DAY, "S1"), "fixmedins_code": CODE, "stmt_date": "2026-11-30",
            "setl_id": "S1", "row": _row("S1").wire()}
    one, two = resolve_message(case, "reverse"), resolve_message(case, "reverse")
    assert one.idempotency_key == two.idempotency_key and one.type == "recon.resolve.reverse"
    assert resolve_message(case, "complete").idempotency_key != one.idempotency_key
    assert case_id(CODE, DAY, "S1") != case_id(CODE, DAY, "S2")


def test_a_differing_amount_becomes_a_case_other_differences_do_not() -> None:
    mine = [_row("S1", "80.00"), _row("S2"), _row("S3").model_copy(update={"psn_no": "PX"})]
    core = [_row("S1", "90.00"), _row("S2"), _row("S3")]
    d = diagnose(mine, core)
    kinds = {f.setl_id: case_kind(f) for f in d.findings}
    assert kinds == {"S1": "amount_differs", "S3": None}
    s1 = next(f for f in d.findings if f.setl_id == "S1")
    assert s1.row["medfee_sumamt"] == "80.00" and s1.core_row["medfee_sumamt"] == "90.00"
    now = datetime(2026, 11, 30, 12, 0, 0)
    assert rule_action("amount_differs", "local", "2026-11-30 09:00:00", now,
                       30) == "caseworker"
    case = {"id": case_id(CODE, DAY, "S1"), "fixmedins_code": CODE, "stmt_date": "2026-11-30",
            "setl_id": "S1", "row": s1.core_row}
    fix = resolve_message(case, "correct")
    assert fix.type == "recon.resolve.complete" and fix.payload["action"] == "correct"
    assert fix.idempotency_key != resolve_message(case, "complete").idempotency_key
