"""F11 线上购药: the lanes after an order is paid (seed 003 lines 3155, 3165, 3331, 3336).

    pharmacy.orders    a paid order to its pharmacy's ERP for 接单, and a 退货退款 request
                       (partner ``pharmacy_erp``)
    supervision.push   each paid order with its 用药情况, and each refund, to the 医保监管平台
                       in real time (partner ``supervision``)

Both partners drop a repeated serial (``partner_serial``: derived from the order and the
kind, so a retry or a 补发 of the same fact is one effect there). An order the ERP refuses
(缺货...) or never takes within its retries ends ``erp_rejected``: its stock is given back
and the supervision platform hears the sale was withdrawn. A refund request or a
supervision push given up on raises an alert (``ALERT``) and waits in the DLQ for a
caseworker's 补发 (``POST /admin/drugs/orders/{no}/resend``).
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any, Final, Protocol

from adapters.pharmacy.port import PharmacyPort
from adapters.supervision.port import SupervisionPort
from contracts.drugs import (
    PHARMACY,
    PHARMACY_ORDER,
    PHARMACY_REFUND,
    SUPERVISION,
    SUPERVISION_ORDER,
    SUPERVISION_REFUND,
    money_text,
    supervision_message,
)
from contracts.envelope import HubMessage
from contracts.errors import ClientError, HubError, PermanentError
from contracts.masking import mask_text
from contracts.messages import partner_serial
from kernel.runtime import Outcome, Route
from storage.drugs import EventOutcome
from storage.journal import TxnUpdate

__all__ = ["DRUG_ROUTES", "PHARMACY_LANE", "PHARMACY_ROUTE", "SUPERVISION_LANE",
           "SUPERVISION_ROUTE", "DrugLaneDeps", "DrugRecords", "order_payload",
           "pharmacy_failed", "push_to_pharmacy", "push_to_supervision", "refund_payload",
           "supervision_failed", "supervision_order", "supervision_refund"]

log = logging.getLogger("hub.drugs")

PHARMACY_LANE: Final = "pharmacy.orders"
SUPERVISION_LANE: Final = "supervision.push"
LANE_ACTOR: Final = "hub"


class DrugRecords(Protocol):
    """The part of ``storage.drugs.DrugStore`` the lanes use."""

    async def move(self, order_no: str, *, expect: tuple[str, ...], status: str, actor: str,
                   event: str, ref: str | None = None, restock: bool = False,
                   detail: dict[str, Any] | None = None, **values: Any) -> EventOutcome: ...

    async def set_supervision(self, order_no: str, status: str) -> None: ...

    async def note(self, order_no: str, event: str, actor: str, detail: dict[str, Any],
                   ref: str | None = None) -> bool: ...


class DrugLaneDeps(Protocol):
    """``routes.drugs``: the F11 store, the pharmacy ERP and the supervision platform."""

    @property
    def drugs(self) -> DrugRecords | None: ...
    @property
    def pharmacy(self) -> PharmacyPort | None: ...
    @property
    def supervision(self) -> SupervisionPort | None: ...


def _json(value: object) -> Any:
    return json.loads(value) if isinstance(value, str) and value else value or {}


def order_payload(order: dict[str, Any]) -> dict[str, Any]:
    """What the ERP gets of a paid order: the buyer (to deliver), lines, money."""
    pay = _json(order.get("payment"))
    return {"order_no": order["order_no"], "pharmacy_code": order["pharmacy_code"],
            "id_number": order["id_number"], "name": order["name"],
            "phone": order.get("phone") or "", "delivery": order["delivery"],
            "address": order.get("address") or "", "items": _json(order["items"]),
            "total": order["total"], "hi_rxno": order.get("hi_rxno") or "",
            "pay_no": pay.get("pay_no", "")}


def refund_payload(order: dict[str, Any], kind: str, reason: str) -> dict[str, Any]:
    """A 退货退款 request: the whole order back."""
    return {"order_no": order["order_no"], "pharmacy_code": order["pharmacy_code"],
            "amount": order["total"], "kind": kind, "reason": reason[:200],
            "items": [{"drug_code": i["drug_code"], "quantity": i["quantity"]}
                      for i in _json(order["items"])]}


def supervision_order(order: dict[str, Any], rx_codes: frozenset[str] = frozenset()
                      ) -> HubMessage:
    """A paid order and its 用药情况 (3336): who, where, which drugs, how paid."""
    pay = _json(order.get("payment"))
    paid_at = order.get("paid_at")
    return supervision_message(SUPERVISION_ORDER, {
        "kind": "order", "order_no": order["order_no"],
        "pharmacy_code": order["pharmacy_code"], "id_number": order["id_number"],
        "name": order["name"], "paid_at": paid_at.isoformat() if paid_at else "",
        "total": order["total"], "fund_pay": pay.get("fund_pay", ""),
        "acct_pay": pay.get("acct_pay", ""), "self_pay": pay.get("self_pay", ""),
        "hi_rxno": order.get("hi_rxno") or "",
        "drugs": [{"drug_code": i["drug_code"], "name": i["name"], "quantity": i["quantity"],
                   "unit_price": i["unit_price"], "amount": i["amount"],
                   "rx": i["drug_code"] in rx_codes} for i in _json(order["items"])]})


def supervision_refund(order: dict[str, Any], amount: Decimal, reason: str) -> HubMessage:
    """A paid order withdrawn: refunded after a return, or refused by the pharmacy."""
    return supervision_message(SUPERVISION_REFUND, {
        "kind": "refund", "order_no": order["order_no"],
        "pharmacy_code": order["pharmacy_code"], "id_number": order["id_number"],
        "amount": money_text(amount), "reason": reason[:200]})


def _txn(msg: HubMessage, status: str, exc: HubError | None = None) -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, str(msg.payload.get("order_no") or "-"),
                     msg.source, status, exc.public_code if exc else "",
                     exc.public_text if exc else "", attempts=msg.attempt + 1)


def _detail(msg: HubMessage) -> dict[str, Any]:
    return {"order_no": msg.payload.get("order_no"), "kind": msg.type.rsplit(".", 1)[1]}


def _alert(msg: HubMessage, partner: str, exc: HubError) -> None:
    log.error("ALERT F11 %s of order %s to %s failed: %s", msg.type, msg.payload.get("order_no"),
              partner, mask_text(exc.public_text))


async def push_to_pharmacy(msg: HubMessage, deps: DrugLaneDeps) -> Outcome:
    if deps.pharmacy is None:
        raise ClientError("this hub has no pharmacy ERP client", partner=PHARMACY)
    if msg.type == PHARMACY_ORDER:
        await deps.pharmacy.push_order(msg.payload, serial=partner_serial(msg))
    else:
        await deps.pharmacy.push_refund(msg.payload, serial=partner_serial(msg))
    return Outcome(txn=_txn(msg, "delivered"), detail=_detail(msg))


async def pharmacy_failed(msg: HubMessage, exc: HubError, deps: DrugLaneDeps) -> Outcome:
    """The ERP refused a paid order or never took it: the order ends ``erp_rejected``, its
    stock given back, the supervision platform told. A refund request given up on waits
    for a 补发 (an alert, an event on the order)."""
    _alert(msg, PHARMACY, exc)
    no = str(msg.payload.get("order_no") or "")
    outputs: tuple[HubMessage, ...] = ()
    reason = f"{exc.public_code}: {exc.public_text}"
    if deps.drugs is not None and msg.type == PHARMACY_ORDER:
        got = await deps.drugs.move(no, expect=("paid",), status="erp_rejected",
                                    actor=LANE_ACTOR, event="erp_rejected", restock=True,
                                    detail={"reason": reason}, reason=reason[:500])
        if got.outcome == "ok" and got.order is not None:
            outputs = (supervision_refund(got.order, Decimal(got.order["total"]),
                                          f"药店未接单: {reason}"),)
    elif deps.drugs is not None:
        await deps.drugs.note(no, "refund_failed", LANE_ACTOR, {"reason": reason})
    return Outcome(outputs=outputs, txn=_txn(
        msg, "rejected" if isinstance(exc, PermanentError) else "dead", exc))


async def push_to_supervision(msg: HubMessage, deps: DrugLaneDeps) -> Outcome:
    if deps.supervision is None:
        raise ClientError("this hub has no supervision platform client", partner=SUPERVISION)
    await deps.supervision.push(msg.payload, serial=partner_serial(msg))
    if deps.drugs is not None:
        await deps.drugs.set_supervision(str(msg.payload["order_no"]),
                                         "reported" if msg.type == SUPERVISION_ORDER
                                         else "withdrawn")
    return Outcome(txn=_txn(msg, "delivered"), detail=_detail(msg))


async def supervision_failed(msg: HubMessage, exc: HubError, deps: DrugLaneDeps) -> Outcome:
    """Refused or given up on: an alert, the order marked, the message in the DLQ (补发)."""
    _alert(msg, SUPERVISION, exc)
    if deps.drugs is not None:
        no = str(msg.payload.get("order_no") or "")
        await deps.drugs.set_supervision(no, "failed")
        await deps.drugs.note(no, "supervision_failed", LANE_ACTOR,
                              {"type": msg.type, "reason": exc.public_text})
    return Outcome(txn=_txn(msg, "rejected" if isinstance(exc, PermanentError) else "dead",
                            exc))


PHARMACY_ROUTE: Final = Route(PHARMACY_LANE, (PHARMACY_ORDER, PHARMACY_REFUND), PHARMACY,
                              push_to_pharmacy, pharmacy_failed)
SUPERVISION_ROUTE: Final = Route(SUPERVISION_LANE, (SUPERVISION_ORDER, SUPERVISION_REFUND),
                                 SUPERVISION, push_to_supervision, supervision_failed)
DRUG_ROUTES: Final[tuple[Route, ...]] = (PHARMACY_ROUTE, SUPERVISION_ROUTE)
