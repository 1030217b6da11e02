"""F11 lanes: a paid order to the ERP and to the supervision platform with the partner
serial; an order the ERP refuses ends erp_rejected (stock back) and the platform is told;
a supervision push given up on marks the order and stays for 补发 (no outputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts.drugs import (
    PHARMACY_ORDER,
    PHARMACY_REFUND,
    SUPERVISION_ORDER,
    SUPERVISION_REFUND,
    pharmacy_message,
)
from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.messages import partner_serial
from routes.drugs import (
    pharmacy_failed,
    push_to_pharmacy,
    push_to_supervision,
    supervision_failed,
    supervision_order,
)
from storage.drugs import EventOutcome

ORDER: dict[str, Any] = {
    "order_no": "ORDER-0001", "pharmacy_code": "P32010200001", "id_number": "x",
    "name": "王小明", "phone": "", "delivery": "pickup", "address": "", "total": "6.60",
    "hi_rxno": "", "payment": '{"pay_no": "P1", "fund_pay": "6.60"}',
    "paid_at": datetime(2026, 11, 30, tzinfo=UTC), "reason": "",
    "items": '[{"drug_code": "XN02BEA001A001010100002", "name": "药", "quantity": 2, '
             '"unit_price": "3.30", "amount": "6.60"}]'}


@dataclass
class Records:
    moves: list[tuple[str, str]] = field(default_factory=list)
    supervision: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    async def move(self, order_no: str, *, expect: tuple[str, ...], status: str, actor: str,
                   event: str, ref: str | None = None, restock: bool = False,
                   detail: dict[str, Any] | None = None, **values: Any) -> EventOutcome:
        self.moves.append((order_no, status))
        assert restock
        return EventOutcome("ok", ORDER | {"status": status})

    async def set_supervision(self, order_no: str, status: str) -> None:
        self.supervision.append((order_no, status))

    async def note(self, order_no: str, event: str, actor: str, detail: dict[str, Any],
                   ref: str | None = None) -> bool:
        self.notes.append(event)
        return True


@dataclass
class Partner:
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def push_order(self, order: dict[str, Any], *, serial: str) -> None:
        self.calls.append(("order", serial))

    async def push_refund(self, refund: dict[str, Any], *, serial: str) -> None:
        self.calls.append(("refund", serial))

    async def push(self, record: dict[str, Any], *, serial: str) -> None:
        self.calls.append((record["kind"], serial))


@dataclass
class Deps:
    drugs: Records = field(default_factory=Records)
    pharmacy: Partner = field(default_factory=Partner)
    supervision: Partner = field(default_factory=Partner)


async def test_pushes_carry_the_partner_serial_and_mark_the_order() -> None:
    d = Deps()
    msg = pharmacy_message(PHARMACY_ORDER, {"order_no": "ORDER-0001"})
    out = await push_to_pharmacy(msg, d)
    assert d.pharmacy.calls == [("order", partner_serial(msg))]
    assert out.txn is not None and out.txn.status == "delivered"
    refund = pharmacy_message(PHARMACY_REFUND, {"order_no": "ORDER-0001"})
    await push_to_pharmacy(refund, d)
    assert d.pharmacy.calls[-1][0] == "refund"
    sup = supervision_order(ORDER, frozenset({"XN02BEA001A001010100002"}))
    assert sup.type == SUPERVISION_ORDER and sup.payload["drugs"][0]["rx"] is True
    await push_to_supervision(sup, d)
    assert d.supervision.calls == [("order", partner_serial(sup))]
    assert d.drugs.supervision == [("ORDER-0001", "reported")]


async def test_an_order_the_erp_refuses_ends_rejected_and_the_platform_hears() -> None:
    d = Deps()
    msg = pharmacy_message(PHARMACY_ORDER, {"order_no": "ORDER-0001"})
    out = await pharmacy_failed(msg, BusinessRejected("E102", "药店缺货"), d)
    assert d.drugs.moves == [("ORDER-0001", "erp_rejected")]
    assert [o.type for o in out.outputs] == [SUPERVISION_REFUND]
    assert out.outputs[0].payload["amount"] == "6.60"
    assert "药店缺货" in out.outputs[0].payload["reason"]
    assert out.txn is not None and out.txn.status == "rejected"


async def test_a_supervision_push_given_up_on_is_marked_and_left_for_resend() -> None:
    d = Deps()
    sup = supervision_order(ORDER)
    out = await supervision_failed(sup, PartnerUnavailable("down", partner="supervision"), d)
    assert out.outputs == () and out.txn is not None and out.txn.status == "dead"
    assert d.drugs.supervision == [("ORDER-0001", "failed")]
    assert d.drugs.notes == ["supervision_failed"]
