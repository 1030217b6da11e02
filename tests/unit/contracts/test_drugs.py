"""F11 contracts: money fen-exact (floats refused), an order's totals, the sale gate's pure
checks (catalogue, 单次购药量, prescription required, the center's answer, stock), the
ERP's 对账 totals and the comparison, the messages' idempotency."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.drugs import (
    PHARMACY_ORDER,
    SUPERVISION_ORDER,
    CatalogueDrug,
    DrugOrder,
    Eligibility,
    PaidNotice,
    PharmacyEvent,
    ReconLine,
    ReconTotals,
    StockPush,
    eligibility_refusal,
    gate_refusals,
    money,
    pharmacy_message,
    prescription_refusals,
    reconcile,
    refusals,
    stock_refusals,
    supervision_message,
)
from contracts.ids import make_id_number

ME = make_id_number(random.Random(3))
OTHER = make_id_number(random.Random(4))
RX, OTC = "XA10BAA017A001010101445", "XN02BEA001A001010100002"
CATALOGUE = {RX: CatalogueDrug(drug_code=RX, name="二甲双胍片", rx=True, max_qty=4),
             OTC: CatalogueDrug(drug_code=OTC, name="对乙酰氨基酚片", rx=False)}
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _order(lines: dict[str, int], **kw: Any) -> DrugOrder:
    prices = {RX: "15.30", OTC: "6.80"}
    items = [{"drug_code": c, "name": "药", "quantity": q, "unit_price": prices[c]}
             for c, q in lines.items()]
    total = sum((Decimal(prices[c]) * q for c, q in lines.items()), Decimal("0.00"))
    values = {"order_no": "ORDER-0001", "pharmacy_code": "P32010200001", "id_number": ME,
              "name": "王小明", "items": items, "total": str(total), "address": "南京市"} | kw
    return DrugOrder.model_validate(values)


def _fields(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return dict(refusals(exc.value))


def test_money_is_fen_exact_and_never_a_float() -> None:
    assert money("12.5") == Decimal("12.50") and money(3) == Decimal("3.00")
    for bad in (12.5, "1.234", "-1", "abc", "NaN", True):
        with pytest.raises(ValueError):
            money(bad)


def test_an_order_whose_total_is_not_its_lines_is_refused_naming_total() -> None:
    assert _order({RX: 2, OTC: 1}).total == Decimal("37.40")
    with pytest.raises(ValidationError) as exc:
        _order({OTC: 1}, total="6.81")
    assert "not the sum" in _fields(exc)["total"]
    with pytest.raises(ValidationError) as exc:
        _order({OTC: 1}, total=6.8)
    assert "float" in _fields(exc)["total"]
    with pytest.raises(ValidationError) as exc:
        _order({OTC: 1}, address="")
    assert "address" in _fields(exc)
    with pytest.raises(ValidationError) as exc:
        _order({OTC: 1}, id_number=ME[:-1] + ("0" if ME[-1] != "0" else "1"))
    assert "id_number" in _fields(exc)


def test_a_drug_twice_in_one_order_is_refused() -> None:
    o = _order({OTC: 1}).model_dump(mode="json")
    o["items"] = o["items"] * 2
    o["total"] = "13.60"
    with pytest.raises(ValidationError) as exc:
        DrugOrder.model_validate(o)
    assert "items.1.drug_code" in _fields(exc)


def test_gate_catalogue_limit_and_prescription_required() -> None:
    assert gate_refusals(_order({OTC: 10}), CATALOGUE, default_limit=10) == []
    got = dict(gate_refusals(_order({OTC: 11, RX: 5}), CATALOGUE, default_limit=10))
    assert "单次购药量" in got["items.0.quantity"] and "limit 10" in got["items.0.quantity"]
    assert "limit 4" in got["items.1.quantity"]  # the drug's own limit from core
    assert "处方药" in got["prescription"]
    unknown = _order({OTC: 1}).model_copy(update={"items": [
        _order({OTC: 1}).items[0].model_copy(update={"drug_code": "XX0000000001"})]})
    assert "catalogue" in dict(gate_refusals(unknown, CATALOGUE, default_limit=10))[
        "items.0.drug_code"]


def _rx(order: DrugOrder, **kw: Any) -> dict[str, str]:
    values: dict[str, Any] = {"found": True, "valid": True, "reason": "", "id_number": ME,
                              "drugs": {RX: Decimal(2)},
                              "expires_at": NOW + timedelta(days=1), "now": NOW} | kw
    return dict(prescription_refusals(order, CATALOGUE, **values))


def test_the_centers_answer_against_the_order() -> None:
    order = _order({RX: 2, OTC: 1}, prescription={"hi_rxno": "RX1"})
    assert _rx(order) == {}
    assert _rx(order, found=False) == {"prescription": "not found at the 电子处方中心"}
    assert "expired" in _rx(order, valid=False, reason="expired")["prescription"]
    assert "expired" in _rx(order, expires_at=NOW - timedelta(minutes=1))["prescription"]
    naive = NOW.replace(tzinfo=None)  # the center's naive times are Beijing's: now is 16:00
    assert _rx(order, expires_at=naive + timedelta(hours=9)) == {}
    assert "expired" in _rx(order, expires_at=naive + timedelta(hours=7))["prescription"]
    assert "another person" in _rx(order, id_number=OTHER)["prescription"]
    assert "not on the prescription" in _rx(order, drugs={})["items.0.drug_code"]
    assert "more than" in _rx(order, drugs={RX: Decimal(1)})["items.0.quantity"]


def test_stock_and_eligibility() -> None:
    got = dict(stock_refusals(_order({OTC: 3, RX: 1}), {OTC: 2, RX: 5}))
    assert list(got) == ["items.0.quantity"] and "negative" in got["items.0.quantity"]
    assert eligibility_refusal(Eligibility(insured=True, normal=True)) is None
    assert eligibility_refusal(Eligibility(insured=False, normal=False))[0] == "id_number"
    assert "normal" in (eligibility_refusal(Eligibility(insured=True, normal=False)) or
                        ("", ""))[1]


def test_payment_split_must_add_up_and_erp_events_name_missing_fields() -> None:
    PaidNotice(pay_no="PAY1", total="10.00", fund_pay="7.00", acct_pay="3.00",
               self_pay="0")
    with pytest.raises(ValidationError) as exc:
        PaidNotice(pay_no="PAY1", total="10.00", fund_pay="7.00", acct_pay="2.99",
                   self_pay="0")
    assert "total" in _fields(exc)
    with pytest.raises(ValidationError) as exc:
        PharmacyEvent(event_id="E-01", order_no="ORDER-0001", event="refunded")
    assert "refund_amount" in _fields(exc)
    with pytest.raises(ValidationError) as exc:
        PharmacyEvent(event_id="E-02", order_no="ORDER-0001", event="shipped")
    assert "logistics_no" in _fields(exc)
    with pytest.raises(ValidationError) as exc:
        StockPush(push_id="S-01", pharmacy_code="P32010200001", mode="snapshot",
                  items=[{"drug_code": OTC, "quantity": -1}])
    assert "items.0.quantity" in _fields(exc)


def test_reconciliation_totals_must_be_their_lines_and_differences_are_found() -> None:
    lines = [{"order_no": "ORDER-0001", "kind": "sale", "amount": "10.00"},
             {"order_no": "ORDER-0002", "kind": "sale", "amount": "5.50"},
             {"order_no": "ORDER-0001", "kind": "refund", "amount": "10.00"}]
    erp = ReconTotals(pharmacy_code="P32010200001", day="2026-11-30", sales=2,
                      sales_amount="15.50", refunds=1, refund_amount="10.00", lines=lines)
    with pytest.raises(ValidationError) as exc:
        ReconTotals(pharmacy_code="P32010200001", day="2026-11-30", sales=2,
                    sales_amount="15.51", refunds=1, refund_amount="10.00", lines=lines)
    assert "not the sum" in _fields(exc)["sales_amount"]
    hub = [ReconLine.model_validate(x) for x in lines]
    assert reconcile(hub, erp).balanced
    other = ReconLine(order_no="ORDER-0002", kind="sale", amount=Decimal("5.00"))
    got = reconcile([hub[0], other, hub[2]], erp)
    assert not got.balanced
    assert got.differences == [{"order_no": "ORDER-0002", "kind": "sale",
                                "issue": "amounts differ", "hub": "5.00", "erp": "5.50"}]
    assert got.hub["sales_amount"] == "15.00" and got.erp["sales_amount"] == "15.50"


def test_messages_are_one_per_order_and_kind() -> None:
    a = pharmacy_message(PHARMACY_ORDER, {"order_no": "ORDER-0001", "total": "1.00"})
    b = pharmacy_message(PHARMACY_ORDER, {"order_no": "ORDER-0001", "total": "1.00",
                                          "x": 1})
    assert a.idempotency_key == b.idempotency_key and a.target == "pharmacy_erp"
    s = supervision_message(SUPERVISION_ORDER, {"order_no": "ORDER-0001"})
    assert s.idempotency_key != a.idempotency_key and s.target == "supervision"
    assert s.entity_key == a.entity_key
