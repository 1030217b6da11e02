"""F10 contracts: money as fen-exact text, periods (旬, month), core's events, the import."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from contracts.errors import ValidationFailed
from contracts.finance import (
    INFNO_APPROVED,
    INFNO_CORRECTED,
    INFNO_WITHDRAW,
    ClosurePage,
    FinanceCallback,
    RefundOrder,
    check_import_row,
    check_total,
    core_status_message,
    order_message,
    parse_event,
    parse_money,
    parse_period,
    period_of,
    previous_period,
    to_fen,
)
from simulators.finance import make_order

ID = "32010219880928997X"


def _order(**changes: Any) -> dict[str, Any]:
    return make_order(random.Random(1), "TF-1", amount="300.01") | changes


def _fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> set[str]:
    return {f for f, _ in exc.value.errors}


@pytest.mark.parametrize(("text", "fen"), [("0.01", 1), ("12.3", 1230), ("100", 10000),
                                           ("999999999999.99", 99999999999999)])
def test_amounts_are_text_and_fen_exact(text: str, fen: int) -> None:
    assert to_fen(parse_money(text)) == fen


@pytest.mark.parametrize(("value", "reason"), [
    ("1.001", "more than 2 decimal places"), ("-1.00", "negative"), (1.5, "not a JSON float"),
    (3, "not a JSON int"), ("1e3", "not an amount"), ("", "not an amount"),
    (" 12.5.1", "not an amount")])
def test_bad_amounts_are_refused_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_money(value)


def test_totals_name_what_does_not_add_up() -> None:
    check_total([Decimal("0.10"), Decimal("0.20")], Decimal("0.30"), 2)
    with pytest.raises(ValidationFailed) as exc:
        check_total([Decimal("0.10"), Decimal("0.20")], Decimal("0.31"), 3)
    assert _fields(exc) == {"count", "total"}


@pytest.mark.parametrize(("name", "start", "end"), [
    ("2026-02-3", date(2026, 2, 21), date(2026, 2, 28)),
    ("2028-02-3", date(2028, 2, 21), date(2028, 2, 29)),
    ("2026-01-3", date(2026, 1, 21), date(2026, 1, 31)),
    ("2026-01-2", date(2026, 1, 11), date(2026, 1, 20)),
    ("2026-01-1", date(2026, 1, 1), date(2026, 1, 10))])
def test_dekads_cover_each_month_without_gap(name: str, start: date, end: date) -> None:
    p = parse_period("finance", name)
    assert (p.start, p.end) == (start, end)


def test_periods_of_days_and_the_last_ended_one() -> None:
    assert period_of("finance", date(2026, 3, 10)).name == "2026-03-1"
    assert period_of("finance", date(2026, 3, 31)).name == "2026-03-3"
    assert previous_period("finance", date(2026, 3, 1)).name == "2026-02-3"
    assert previous_period("finance", date(2026, 3, 11)).name == "2026-03-1"
    assert previous_period("tax", date(2026, 1, 15)).name == "2025-12"
    for target, name in (("finance", "2026-03"), ("tax", "2026-03-1"), ("bank", "2026-03"),
                         ("tax", "2026-13")):
        with pytest.raises(ValidationFailed):
            parse_period(target, name)


def test_an_approved_order_parses_and_travels_as_text() -> None:
    order = parse_event(INFNO_APPROVED, {"data": _order()})
    assert isinstance(order, RefundOrder) and order.amount == Decimal("300.01")
    msg = order_message(order, 2, "c1")
    assert msg.payload["amount"] == "300.01" and msg.payload["version"] == 2
    assert all(isinstance(i["amount"], str) for i in msg.payload["items"])
    assert order_message(order, 2, "c2").idempotency_key == msg.idempotency_key
    assert order_message(order, 3, "c1").idempotency_key != msg.idempotency_key


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": "300.00"}, "data.amount"),
    ({"amount": 300.01}, "data.amount"),
    ({"amount": "-300.01"}, "data.amount"),
    ({"id_number": None}, "data.id_number"),
    ({"id_number": ID[:-1] + "0"}, "data.id_number"),
    ({"period_end": "190001"}, "data.period_end"),
    ({"source": "2"}, "data.refund_no"),
    ({"payee": {"account_name": "x", "account_no": "12ab", "bank_name": "银行"}},
     "data.payee.account_no"),
    ({"order_no": "no spaces allowed"}, "data.order_no")])
def test_bad_orders_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_event(INFNO_APPROVED, {"data": _order(**change)})
    assert field in _fields(exc), exc.value.errors


def test_an_item_with_three_decimals_is_refused() -> None:
    data = _order()
    data["items"][0]["amount"] = "100.001"
    with pytest.raises(ValidationFailed) as exc:
        parse_event(INFNO_APPROVED, {"data": data})
    assert "data.items.0.amount" in _fields(exc)


def test_withdrawal_and_correction_events() -> None:
    w = parse_event(INFNO_WITHDRAW, {"data": {"order_no": "TF-1"}})
    assert w.order_no == "TF-1"
    with pytest.raises(ValidationFailed) as exc:
        parse_event(INFNO_CORRECTED, {"data": {"order_no": "TF-1", "payee": {}}})
    assert "data.payee.account_no" in _fields(exc)
    with pytest.raises(ValidationFailed) as exc:
        parse_event(INFNO_WITHDRAW, {"nodata": 1})
    assert _fields(exc) == {"data"}


def test_core_status_is_one_fact_per_order_version_and_status() -> None:
    a = core_status_message("TF-1", 1, "refunded", amount="1.00")
    b = core_status_message("TF-1", 1, "refunded", amount="1.00", correlation_id="x")
    assert a.idempotency_key == b.idempotency_key
    assert core_status_message("TF-1", 2, "refunded").idempotency_key != a.idempotency_key


def test_callback_flag_must_match_the_status() -> None:
    base = {"order_no": "TF-1", "version": 1, "status": "refunded", "amount": "1.00",
            "paid_at": "2026-01-01T10:00:00+08:00"}
    assert FinanceCallback.model_validate(base | {"refunded": "1"}).refunded == "1"
    with pytest.raises(ValueError, match="已退费标志"):
        FinanceCallback.model_validate(base | {"refunded": "0"})


def test_a_closure_page_whose_total_does_not_add_up_is_refused() -> None:
    page = {"batch_id": "finance:2026-01-1", "period": "2026-01-1",
            "start_date": "2026-01-01", "end_date": "2026-01-10", "page": 1, "pages": 1,
            "batch_count": 2, "batch_total": "3.00", "count": 2, "total": "3.00",
            "items": [{"order_no": "A", "version": 1, "amount": "1.00",
                       "refunded_on": "2026-01-02"},
                      {"order_no": "B", "version": 1, "amount": "2.00",
                       "refunded_on": "2026-01-03"}]}
    assert ClosurePage.model_validate(page).total == Decimal("3.00")
    with pytest.raises(ValueError, match="add up"):
        ClosurePage.model_validate(page | {"total": "3.01"})


def test_import_rows_name_the_chinese_column() -> None:
    row = check_import_row({"seq": "1", "name": "张三", "id_number": ID,
                            "period_start": "2026-01", "period_end": date(2026, 3, 5)})
    assert (row.period_start, row.period_end) == ("202601", "202603")
    with pytest.raises(ValidationFailed) as exc:
        check_import_row({"seq": "x", "name": "张3", "id_number": "1",
                          "period_start": "2026-13", "period_end": ""})
    assert _fields(exc) == {"序号", "姓名", "身份证", "退费起始时间", "退费终止时间"}
    with pytest.raises(ValidationFailed) as exc:
        check_import_row({"seq": 2, "name": "张三", "id_number": ID,
                          "period_start": "202603", "period_end": "202601"})
    assert _fields(exc) == {"退费终止时间"}
