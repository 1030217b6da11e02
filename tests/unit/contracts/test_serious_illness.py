"""F15 contracts: core's H8501 record, the financing schedule (29, 39), batch totals (28, 71,
75), the claim time limit (111), clues (123, 126)."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts.assistance import Settlement
from contracts.ids import make_id_number
from contracts.serious_illness import (
    Clue,
    Reversal,
    check_batch,
    clue_message,
    december_transfer,
    due_date,
    financing_message,
    financing_total,
    is_overdue,
    netting,
    parse_event,
    parse_period,
    person_key,
    schedule,
    share_message,
    share_payload,
)
from simulators.assistance import make_settlement
from simulators.insurer import reversal_data, settlement_data

ID = make_id_number(random.Random(1))


def _s(setl_id: str = "S1", total_fen: int = 2_000_000) -> Settlement:
    return make_settlement(ID, datetime(2026, 3, 4, 9, 30), total_fen, setl_id=setl_id,
                           name="王芳")


def test_a_settlement_event_carries_its_serious_illness_segment_fen_exact() -> None:
    got = parse_event(settlement_data(_s()))
    assert isinstance(got, Settlement)
    p = share_payload(got)
    assert p["serious_illness_pay"] == "1000.00" and p["medfee_total"] == "20000.00"
    assert p["kind"] == "settle" and p["id_number"] == ID


def test_a_reversal_names_its_original_and_a_bad_record_names_its_field() -> None:
    got = parse_event(reversal_data("R1", _s()))
    assert isinstance(got, Reversal) and got.orig_setl_id == "S1"
    assert parse_event(reversal_data("S1", _s())) == [
        ("input.data.orig_setl_id", "a 冲销 cannot reverse itself")]
    assert parse_event({"setl_type": "3"}) == [("input.data.setl_type",
                                                "must be 1 (结算) or 2 (冲销)")]
    floated = settlement_data(_s()) | {"hifmi_pay": 1000.0}
    errors = parse_event(floated)
    assert isinstance(errors, list) and errors[0][0] == "input.data.hifmi_pay"
    assert "float" in errors[0][1]
    missing = {k: v for k, v in reversal_data("R1", _s()).items() if k != "certno"}
    assert parse_event(missing) == [("input.data.certno", "required")]


def test_shares_queue_per_person_and_a_reversal_follows_its_original() -> None:
    orig = share_message(share_payload(_s()))
    rev = share_message(share_payload(_s()) | {"kind": "reverse", "setl_id": "R1",
                                                "orig_setl_id": "S1"},
                        after=orig.idempotency_key)
    assert orig.entity_key == rev.entity_key == person_key(ID) and ID not in orig.entity_key
    assert rev.after == orig.idempotency_key and not orig.after
    assert share_message(share_payload(_s())).idempotency_key == orig.idempotency_key


def test_financing_is_paying_residents_times_110_yuan() -> None:
    assert financing_total(720_000) == Decimal("79200000.00")  # line 37: 7920 万
    assert financing_total(0) == Decimal("0.00")
    with pytest.raises(ValueError):
        financing_total(-1)
    a = financing_message({"year": "2026", "payers": 3, "total": "330.00"})
    b = financing_message({"year": "2026", "payers": 3, "total": "330.00"})
    c = financing_message({"year": "2026", "payers": 4, "total": "440.00"})
    assert a.idempotency_key == b.idempotency_key != c.idempotency_key


def test_the_first_year_transfers_60_percent_then_the_difference() -> None:
    t = schedule(2025, Decimal("79200000.00"), first_year=True, actual=Decimal("80000000.00"))
    assert [(x.due, x.kind, x.amount) for x in t] == [
        (date(2025, 9, 30), "advance", Decimal("47520000.00")),
        (date(2025, 12, 31), "remainder", Decimal("32480000.00"))]
    assert sum(x.amount for x in t) == Decimal("80000000.00")


def test_a_renewed_year_transfers_25_percent_three_times_then_the_difference() -> None:
    t = schedule(2026, Decimal("100.01"), first_year=False, actual=Decimal("99.00"))
    assert [x.due for x in t] == [date(2026, 4, 30), date(2026, 6, 30), date(2026, 9, 30),
                                  date(2026, 12, 31)]
    assert [x.amount for x in t] == [Decimal("25.00")] * 3 + [Decimal("24.00")]  # floored
    assert schedule(2026, Decimal(100), first_year=False)[-1].amount == Decimal("0.00")


def test_december_never_pays_back_and_netting_settles_the_rest() -> None:
    assert december_transfer(Decimal("90.00"), Decimal("100.00")) == Decimal("0.00")
    assert netting(Decimal("90.00"), Decimal("100.00")) == Decimal("-10.00")
    assert netting(Decimal("110.50"), Decimal("100.00")) == Decimal("10.50")


def test_a_batch_is_kept_only_when_its_header_adds_up() -> None:
    rows = [{"setl_id": "S1", "paid": "10.10"}, {"setl_id": "S2", "paid": "0.90"}]
    ok = check_batch("claims", "2026Q1", {"count": 2, "total": "11.00"}, rows)
    assert not isinstance(ok, list) and ok.total == Decimal("11.00") and ok.count == 2
    assert check_batch("claims", "2026Q1", {"count": 2, "total": "11.01"}, rows) == [
        ("header.total", "11.01 is not the sum of the rows (11.00)")]
    wrong = check_batch("claims", "2026Q1", {"count": 3, "total": "11.00"}, rows)
    assert isinstance(wrong, list) and wrong[0] == ("header.count",
                                                    "3 is not the number of rows (2)")
    floated = check_batch("claims", "2026Q1", {"count": 1, "total": "1.00"},
                          [{"paid": 1.0}])
    assert isinstance(floated, list) and floated[0][0] == "rows[0].paid"
    other = check_batch("claims", "2026Q1", {"count": 0, "total": "0", "period": "2026Q2"},
                        [])
    assert other == [("header.period", "'2026Q2' is not 2026Q1")]
    net = check_batch("netting", "2026", {"count": 2, "total": "-5.00"},
                      [{"amount": "95.00"}, {"amount": "-100.00"}])
    assert not isinstance(net, list) and net.total == Decimal("-5.00")


def test_periods_are_quarters_for_claims_and_years_otherwise() -> None:
    assert parse_period("claims", "2026q1") == "2026Q1"
    assert parse_period("clearing", "2026") == "2026"
    for kind, period in (("claims", "2026"), ("netting", "2026Q1"), ("other", "2026")):
        with pytest.raises(ValueError):
            parse_period(kind, period)


def test_the_claim_limit_counts_working_days() -> None:
    friday = date(2026, 11, 27)
    assert due_date(friday, 1) == date(2026, 11, 30)  # the Monday
    assert due_date(friday) == date(2026, 12, 18)  # 15 working days: three weeks
    assert not is_overdue(date(2026, 12, 18), None, date(2026, 12, 18))
    assert is_overdue(date(2026, 12, 18), None, date(2026, 12, 19))
    assert is_overdue(date(2026, 12, 18), date(2026, 12, 21), date(2026, 12, 1))
    assert not is_overdue(date(2026, 12, 18), date(2026, 12, 1), date(2027, 1, 1))


def test_a_clue_keeps_money_exact_and_refuses_a_float() -> None:
    c = Clue(clue_id="C1", institution_code="H1", category="分解住院", summary="x",
             amount="12.30")
    assert clue_message(c).payload["amount"] == "12.30"
    with pytest.raises(ValidationError, match="amount"):
        Clue(clue_id="C1", institution_code="H1", category="c", summary="x",
             amount=12.3)
    with pytest.raises(ValidationError, match="id_number"):
        Clue(clue_id="C1", institution_code="H1", category="c", summary="x", amount="1",
             id_number="123")
