"""F7 医疗救助平台 contracts: amounts fen-exact, a settlement's parts add up, headers and
totals, the identity held on a day (救助历史), the query's period."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts.assistance import (
    ExpenseQuery,
    Totals,
    fen,
    identity_at,
    institution_from_wire,
    month_bounds,
    page_serial,
    parse_run_month,
    settlement_from_wire,
    settlement_message,
    settlement_ref,
    settlement_to_wire,
)
from contracts.ids import make_id_number

ID = make_id_number(random.Random(3))
WIRE = {"setl_id": "S1", "certno": ID, "psn_name": "王五", "setl_time": "2026-11-03 10:00:00",
        "fixmedins_code": "H1", "fixmedins_name": "南京市第一医院", "med_type": "21",
        "medfee_sumamt": "1000.10", "fund_pay_sumamt": "600.06", "hifmi_pay": "0.00",
        "maf_pay": "100.01", "psn_pay": "300.03"}


def test_amounts_are_fen_exact_strings_not_floats() -> None:
    assert fen("12.3") == Decimal("12.30") and fen(7) == Decimal("7.00")
    for bad, why in ((1.5, "not a float"), ("1.005", "fen-exact"), ("-1", "negative"),
                     ("abc", "not an amount"), (True, "bool")):
        with pytest.raises(ValueError, match=why.split()[-1]):
            fen(bad, "x")


def test_a_settlement_from_core_and_back() -> None:
    s = settlement_from_wire(WIRE)
    assert not isinstance(s, list)
    assert s.month == "202611" and s.setl_date == date(2026, 11, 3)
    assert s.amounts()["assistance_pay"] == "100.01"
    assert settlement_to_wire(s) == WIRE
    assert s.ref == settlement_ref("S1") and len(s.ref) == 32 and "S1" not in s.ref


def test_a_bad_settlement_names_cores_fields() -> None:
    got = settlement_from_wire(WIRE | {"medfee_sumamt": "1000.11"}, "input.data")
    assert isinstance(got, list) and got[0][0] == "input.data.medfee_sumamt"
    assert "sum of its parts" in got[0][1]
    got = settlement_from_wire(WIRE | {"maf_pay": 100.01, "extra": 1})
    assert isinstance(got, list)
    fields = {f for f, _ in got}
    assert fields == {"record.extra", "record.maf_pay"}
    got = settlement_from_wire({k: v for k, v in WIRE.items() if k != "certno"})
    assert got == [("record.certno", "required")]
    got = settlement_from_wire(WIRE | {"certno": ID[:-1] + ("0" if ID[-1] != "0" else "1")})
    assert isinstance(got, list) and got[0][0] == "record.certno"
    assert got[0][1].startswith("not a valid ID number")


def test_totals_add_up_and_say_where_they_differ() -> None:
    s = settlement_from_wire(WIRE)
    assert not isinstance(s, list)
    t = Totals.of([s, s])
    assert t.count == 2 and t.medfee_total == Decimal("2000.20")
    assert Totals.from_wire(t.to_wire()) == t
    assert Totals.of([t.as_dict() | {"count": 0}]).medfee_total == Decimal("2000.20")
    off = Totals.from_wire(t.to_wire() | {"maf_pay": "200.03"})
    assert off.differences(t) == ["assistance_pay: 200.03 != 200.02"]
    with pytest.raises(ValueError, match="count"):
        Totals.from_wire({"count": "2"})


def test_the_identity_held_on_a_day() -> None:
    held = [{"identity": "06", "start_date": date(2026, 1, 1), "end_date": date(2026, 6, 30),
             "active": False, "is_primary": False},
            {"identity": "01", "start_date": date(2026, 3, 1), "end_date": None,
             "active": True, "is_primary": True}]
    assert identity_at(held, date(2025, 12, 31)) is None
    assert identity_at(held, date(2026, 2, 1))["identity"] == "06"  # type: ignore[index]
    assert identity_at(held, date(2026, 4, 1))["identity"] == "01"  # type: ignore[index]
    assert identity_at(held, date(2027, 1, 1))["identity"] == "01"  # type: ignore[index]
    assert identity_at(held[:1], date(2026, 7, 1)) is None


def test_the_query_and_the_months() -> None:
    q = ExpenseQuery.model_validate({"id_number": ID.lower(), "start_date": "2026-01-01",
                                     "end_date": "2026-12-31"})
    assert q.id_number == ID.upper()
    with pytest.raises(ValidationError, match="end_date"):
        ExpenseQuery.model_validate({"id_number": ID, "start_date": "2026-02-01",
                                     "end_date": "2026-01-01"})
    with pytest.raises(ValidationError, match="366"):
        ExpenseQuery.model_validate({"id_number": ID, "start_date": "2025-01-01",
                                     "end_date": "2026-06-01"})
    assert parse_run_month("2026-02") == parse_run_month("202602") == "202602"
    with pytest.raises(ValueError):
        parse_run_month("2026-13")
    assert month_bounds("202602") == (date(2026, 2, 1), date(2026, 2, 28))
    assert month_bounds("202612") == (date(2026, 12, 1), date(2026, 12, 31))


def test_the_message_and_the_serials_are_the_facts() -> None:
    payload = {"ref": "r", "setl_id": "S1", "id_number": ID}
    a, b = settlement_message(payload), settlement_message(dict(payload))
    assert a.idempotency_key == b.idempotency_key and a.message_id != b.message_id
    assert page_serial("x", "d", ["1", "2"]) == page_serial("x", "d", ["1", "2"])
    assert page_serial("x", "d", ["1", "2"]) != page_serial("x", "e", ["1", "2"])


def test_an_institution_needs_its_code_and_name() -> None:
    got = institution_from_wire({"fixmedins_code": "H1", "fixmedins_name": "甲", "hosp_lv": "3"})
    assert not isinstance(got, list) and got.as_row()["level"] == "3"
    assert institution_from_wire({"fixmedins_code": "H1"}) == [
        ("record.fixmedins_name", "required")]
