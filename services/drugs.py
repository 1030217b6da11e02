"""F11 线上购药: the sale gate, an order's life, the pharmacy ERP's events, stock, 对账.

Seed 003 lines 3064-3089 (下单, 支付, 确认收货, 退货), 3154-3170 (接单, 发货, 退款, 对账),
3270-3281 (处方药 flag from core, 医保资格), 3310 (单次购药量), 3325-3336 (处方中心, ERP,
监管平台). Readings in ``contracts/DRUG_SALES.md``.

The gate (``place``) runs before an order is accepted, cheapest first, and refuses with
each field and reason; nothing is held for a refused order:

    1. the order alone: drugs in the catalogue synced from core, 单次购药量, a prescription
       named when a line is a 处方药 (``contracts.drugs.gate_refusals``)
    2. core's 医保资格 (H6101): insured and normal
    3. the 电子处方中心 (``PrescriptionPort``): found, valid, not expired, this buyer's,
       covering each 处方药 line; an answer that failed verification (bad signature, wrong
       key, replayed, undecryptable) refuses the sale with the center's reason
    4. the pharmacy's stock, held in the same transaction that stores the order

A partner that cannot answer now (core, the center) is a 503: nothing was stored, the mall
asks again. After payment the order goes to the ERP and the supervision platform on their
lanes (``routes.drugs``); the ERP's events move it (``erp_event``); the clock (``tick``)
confirms receipts due (3084), runs yesterday's 对账 and refreshes the catalogue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from adapters.core.port import CorePort
from adapters.pharmacy.port import PharmacyPort
from adapters.prescription.port import PrescriptionPort
from config.drugs import DrugSettings
from contracts.drugs import (
    MALL,
    PHARMACY,
    PHARMACY_ORDER,
    PHARMACY_REFUND,
    RETURN_KINDS,
    DrugOrder,
    PaidNotice,
    PharmacyEvent,
    ReconResult,
    ReturnRequest,
    StockPush,
    eligibility_refusal,
    gate_refusals,
    money,
    money_text,
    pharmacy_message,
    prescription_refusals,
    reconcile,
)
from contracts.errors import HubError, PermanentError, TransientError
from contracts.masking import mask_text
from kernel.deps import Publisher
from routes.drugs import order_payload, refund_payload, supervision_order, supervision_refund
from services.audit import Actor, Audit, Caller
from storage.drugs import DrugStore, beijing_day, masked
from storage.times import utc_now

__all__ = ["CLOCK", "Answer", "DrugDesk"]

log = logging.getLogger("hub.drugs")

CLOCK: Final = Caller("drug-clock", "system")
"""The actor of automatic receipts and scheduled 对账 in the audit log and order events."""


@dataclass(frozen=True)
class Answer:
    """What a door answers: an HTTP status and a JSON body (masked)."""

    status: int
    body: dict[str, Any]


def _refused(order_no: str, refusals: list[tuple[str, str]], status: int = 422,
             code: str = "REFUSED") -> Answer:
    return Answer(status, {"accepted": False, "order_no": order_no, "code": code,
                           "refused": [{"field": f, "reason": mask_text(r)}
                                       for f, r in refusals]})


def _view(order: dict[str, Any]) -> dict[str, Any]:
    """An order as the doors answer it (masked)."""
    keep = ("order_no", "pharmacy_code", "id_number", "name", "status", "total", "items",
            "hi_rxno", "delivery", "logistics", "return_kind", "reason", "refund_amount",
            "supervision", "auto_received", "created_at", "paid_at", "shipped_at",
            "updated_at")
    return masked({k: order.get(k) for k in keep})


@dataclass
class DrugDesk:
    store: DrugStore
    publisher: Publisher
    core: CorePort
    settings: DrugSettings = field(default_factory=DrugSettings)
    prescription: PrescriptionPort | None = None
    pharmacy: PharmacyPort | None = None
    audit: Audit | None = None
    now: Callable[[], datetime] = utc_now
    """The clock (UTC); tests move it."""

    # ------------------------------------------------------------ the sale gate

    async def place(self, order: DrugOrder, *, actor: str = MALL) -> Answer:
        """Accept an order (its stock held, status ``created``) or refuse it with each
        field and reason. The same order number again answers what is stored."""
        stored = await self.store.order(order.order_no)
        if stored is not None:
            return self._accepted(stored, duplicate=True)
        catalogue = await self.store.catalogue(i.drug_code for i in order.items)
        refusals = gate_refusals(order, catalogue, default_limit=self.settings.default_limit)
        if refusals:
            return await self._refuse(order, refusals, actor)
        try:
            elig = await self.core.drug_eligibility(order.id_number)
        except TransientError as exc:
            return _refused(order.order_no, [("id_number", f"core cannot answer the 医保资格 "
                                              f"check now: {exc.public_text}")], 503,
                            "UNAVAILABLE")
        except PermanentError as exc:
            elig_refusal: tuple[str, str] | None = ("id_number", f"core refused the 医保资格 "
                                                    f"check: {exc.public_text}")
        else:
            elig_refusal = eligibility_refusal(elig)
        if elig_refusal is not None:
            refusals.append(elig_refusal)
        rx_drugs = {c for c, d in catalogue.items() if d.rx}
        if order.prescription is not None and any(i.drug_code in rx_drugs
                                                  for i in order.items):
            got = await self._prescription(order, catalogue)
            if isinstance(got, Answer):
                return got
            refusals += got
        if refusals:
            return await self._refuse(order, refusals, actor)
        row, created, short = await self.store.create_order(order, actor=actor)
        if row is None:
            return await self._refuse(order, short, actor)
        return self._accepted(row, duplicate=not created)

    async def _prescription(self, order: DrugOrder, catalogue: dict[str, Any]
                            ) -> list[tuple[str, str]] | Answer:
        """The center's verified answer, as refusals; an Answer when it cannot answer."""
        assert order.prescription is not None
        if self.prescription is None:
            return [("prescription", "this hub has no 电子处方中心 client: a 处方药 cannot "
                     "be sold")]
        try:
            rx = await self.prescription.query_prescription(
                order.prescription.hi_rxno, rx_trace_code=order.prescription.rx_trace_code,
                fixmedins_code=order.pharmacy_code)
        except TransientError as exc:
            return _refused(order.order_no, [("prescription", f"the 电子处方中心 cannot answer "
                                              f"now: {exc.public_text}")], 503, "UNAVAILABLE")
        except PermanentError as exc:
            log.warning("F11 order %s: the prescription center's answer was refused: %s",
                        order.order_no, mask_text(exc.public_text))
            return [("prescription", "the 电子处方中心's answer failed verification and is not "
                     f"trusted: {exc.public_text}")]
        return prescription_refusals(
            order, catalogue, found=rx.found, valid=rx.valid, reason=rx.reason,
            id_number=rx.id_number, drugs={d.med_list_codg: d.quantity for d in rx.drugs},
            expires_at=rx.expires_at, now=self.now())

    async def _refuse(self, order: DrugOrder, refusals: list[tuple[str, str]],
                      actor: str) -> Answer:
        """A refused sale: answered with each field and reason, and noted (运营监管处方情况,
        3220) on the order number without storing an order."""
        await self.store.note(order.order_no, "refused", actor, {
            "pharmacy_code": order.pharmacy_code, "refused": refusals[:20],
            "hi_rxno": order.prescription.hi_rxno if order.prescription else ""})
        return _refused(order.order_no, refusals)

    def _accepted(self, row: dict[str, Any], *, duplicate: bool) -> Answer:
        return Answer(200, {"accepted": True, "duplicate": duplicate, "order": _view(row)})

    # ------------------------------------------------------------ the mall's steps

    async def order(self, order_no: str) -> Answer:
        row = await self.store.order(order_no)
        if row is None:
            return Answer(404, {"order_no": order_no, "field": "order_no",
                                "reason": "no such order"})
        return Answer(200, {"order": _view(row)})

    async def paid(self, order_no: str, notice: PaidNotice, *, actor: str = MALL) -> Answer:
        """在线支付 done (3069): the split must add up to the order's total; the order goes
        to its pharmacy (接单) and to the supervision platform. A repeat of the same
        payment republishes both (their partners drop the repeat)."""
        row = await self.store.order(order_no)
        if row is None:
            return _conflict(order_no, "order_no", "no such order", 404)
        if notice.total != money(row["total"]):
            return _refused(order_no, [("total", f"{money_text(notice.total)} is not the "
                                        f"order's total {row['total']}")])
        now = self.now()
        pay = {"pay_no": notice.pay_no, "total": money_text(notice.total),
               "fund_pay": money_text(notice.fund_pay), "acct_pay": money_text(notice.acct_pay),
               "self_pay": money_text(notice.self_pay)}
        got = await self.store.move(order_no, expect=("created",), status="paid", actor=actor,
                                    event="paid", ref=f"paid:{order_no}", detail=pay,
                                    payment=json.dumps(pay), paid_at=now,
                                    paid_day=beijing_day(now))
        if got.outcome == "conflict" or got.order is None:
            return _conflict(order_no, "status", f"the order is {_status(got.order)}, not "
                             "waiting for payment")
        if got.outcome == "replay" and json.loads(got.order["payment"] or "{}").get(
                "pay_no") != notice.pay_no:
            return _conflict(order_no, "pay_no", "the order was paid by another payment")
        await self._after_payment(got.order)
        return Answer(200, {"order": _view(got.order), "duplicate": got.outcome == "replay"})

    async def _after_payment(self, order: dict[str, Any]) -> None:
        catalogue = await self.store.catalogue(i["drug_code"] for i in json.loads(
            order["items"]))
        rx = frozenset(c for c, d in catalogue.items() if d.rx)
        await self.publisher.publish(pharmacy_message(PHARMACY_ORDER, order_payload(order)))
        await self.publisher.publish(supervision_order(order, rx))

    async def received(self, order_no: str, *, actor: str = MALL, auto: bool = False
                       ) -> Answer:
        """确认收货 (3084) by the buyer, or by the clock after N days (``auto``)."""
        got = await self.store.move(order_no, expect=("shipped",), status="received",
                                    actor=actor, event="auto_received" if auto else "received",
                                    ref=f"received:{order_no}", auto_received=auto)
        if got.outcome == "not_found":
            return _conflict(order_no, "order_no", "no such order", 404)
        if got.outcome == "conflict" or got.order is None:
            return _conflict(order_no, "status", f"the order is {_status(got.order)}, not "
                             "shipped")
        return Answer(200, {"order": _view(got.order), "duplicate": got.outcome == "replay"})

    async def return_order(self, order_no: str, req: ReturnRequest, *,
                           actor: str = MALL) -> Answer:
        """订单退货 (3089): a paid order not yet received goes back; the refund request
        goes to the pharmacy (退款 3165); it is refunded when the ERP says so."""
        reason = f"{RETURN_KINDS[req.kind]}" + (f": {req.reason}" if req.reason else "")
        got = await self.store.move(order_no, expect=("paid", "accepted", "shipped"),
                                    status="return_requested", actor=actor, event="return",
                                    ref=f"return:{order_no}", detail={"kind": req.kind},
                                    return_kind=req.kind, reason=reason[:500])
        if got.outcome == "not_found":
            return _conflict(order_no, "order_no", "no such order", 404)
        if got.outcome == "conflict" or got.order is None:
            return _conflict(order_no, "status", f"the order is {_status(got.order)}: only a "
                             "paid order not yet received can be returned")
        await self.publisher.publish(pharmacy_message(
            PHARMACY_REFUND, refund_payload(got.order, req.kind, reason)))
        return Answer(200, {"order": _view(got.order), "duplicate": got.outcome == "replay"})

    # ------------------------------------------------------------ the ERP's side

    async def erp_event(self, ev: PharmacyEvent, *, actor: str = PHARMACY) -> Answer:
        """接单, 发货, 退款 done or a refusal, from the pharmacy's ERP; a repeated
        ``event_id`` is a replay (answered, nothing changes)."""
        ref = f"erp:{ev.event_id}"
        if ev.event == "accepted":
            got = await self.store.move(ev.order_no, expect=("paid",), status="accepted",
                                        actor=actor, event="accepted", ref=ref)
        elif ev.event == "shipped":
            logistics = {"company": ev.logistics_company, "no": ev.logistics_no}
            got = await self.store.move(ev.order_no, expect=("accepted",), status="shipped",
                                        actor=actor, event="shipped", ref=ref,
                                        detail=logistics, logistics=json.dumps(
                                            logistics, ensure_ascii=False),
                                        shipped_at=self.now())
        elif ev.event == "refunded":
            row = await self.store.order(ev.order_no)
            if row is not None and ev.refund_amount is not None \
                    and ev.refund_amount != money(row["total"]):
                return _refused(ev.order_no, [("refund_amount", f"{money_text(ev.refund_amount)}"
                                               f" is not the order's total {row['total']}: a "
                                               "return refunds the whole order")])
            now = self.now()
            got = await self.store.move(ev.order_no, expect=("return_requested",),
                                        status="refunded", actor=actor, event="refunded",
                                        ref=ref, restock=True,
                                        detail={"amount": money_text(ev.refund_amount or
                                                                     Decimal(0))},
                                        refund_amount=money_text(ev.refund_amount or
                                                                 Decimal(0)),
                                        refund_day=beijing_day(now))
            if got.outcome == "ok" and got.order is not None:
                await self.publisher.publish(supervision_refund(
                    got.order, money(got.order["refund_amount"]), got.order["reason"]))
        else:  # rejected: 药店缺货... the order ends, stock given back, supervision told
            got = await self.store.move(ev.order_no, expect=("paid",), status="erp_rejected",
                                        actor=actor, event="erp_rejected", ref=ref,
                                        restock=True, detail={"reason": ev.reason},
                                        reason=ev.reason[:500])
            if got.outcome == "ok" and got.order is not None:
                await self.publisher.publish(supervision_refund(
                    got.order, money(got.order["total"]), f"药店未接单: {ev.reason}"))
        if got.outcome == "not_found":
            return _conflict(ev.order_no, "order_no", "no such order", 404)
        if got.outcome == "conflict":
            return _conflict(ev.order_no, "event", f"{ev.event} does not apply: the order is "
                             f"{_status(got.order)}")
        return Answer(200, {"order_no": ev.order_no, "status": _status(got.order),
                            "duplicate": got.outcome == "replay"})

    async def stock_push(self, push: StockPush, *, actor: str = PHARMACY) -> Answer:
        """The ERP's stock (snapshot or deltas); one that would go negative is refused
        whole, each line with field and reason."""
        got = await self.store.apply_stock(push, actor=actor)
        if got.outcome == "refused":
            return Answer(422, {"accepted": False, "push_id": push.push_id,
                                "refused": [{"field": f, "reason": r}
                                            for f, r in got.refusals]})
        return Answer(200, {"accepted": True, "push_id": push.push_id,
                            "duplicate": got.outcome == "replay", "lines": got.lines})

    async def pull_stock(self, pharmacy_code: str, actor: Actor) -> Answer:
        """The hub asks the ERP for a pharmacy's stock (库存盘点) and takes it as a
        snapshot."""
        if self.pharmacy is None:
            return Answer(503, {"reason": "this hub has no pharmacy ERP client"})
        try:
            lines = await self.pharmacy.stock(pharmacy_code)
        except HubError as exc:
            return Answer(502, {"pharmacy_code": pharmacy_code, "reason": exc.public_text})
        if not lines:
            return Answer(200, {"pharmacy_code": pharmacy_code, "lines": 0})
        push = StockPush(push_id=f"pull-{self.now().strftime('%Y%m%d%H%M%S%f')}",
                         pharmacy_code=pharmacy_code, mode="snapshot", items=lines)
        got = await self.stock_push(push, actor=actor.user)
        await self._audit(actor, "drugs.stock.pull", pharmacy_code, {"lines": len(lines)},
                          "ok" if got.status == 200 else "refused")
        return got

    # ------------------------------------------------------------ core's catalogue

    async def sync_catalogue(self, actor: Actor = CLOCK) -> Answer:
        """The 处方药 flags (3271): core's catalogue (H6102) replaces the hub's."""
        try:
            drugs = await self.core.drug_catalogue()
        except HubError as exc:
            return Answer(502, {"synced": False, "reason": exc.public_text})
        counts = await self.store.replace_catalogue(drugs)
        await self._audit(actor, "drugs.catalogue.sync", "core", counts, "ok")
        return Answer(200, {"synced": True, **counts})

    # ------------------------------------------------------------ 对账

    async def reconcile(self, pharmacy_code: str, day: date, actor: Actor) -> Answer:
        """药店订单对账 (3170): the hub's sales and refunds of the pharmacy's day against the
        ERP's totals and lines; stored, audited."""
        if self.pharmacy is None:
            return Answer(503, {"reason": "this hub has no pharmacy ERP client"})
        hub_lines = await self.store.day_lines(pharmacy_code, day)
        try:
            erp = await self.pharmacy.reconciliation(pharmacy_code, day)
        except HubError as exc:
            return Answer(502, {"pharmacy_code": pharmacy_code, "day": day.isoformat(),
                                "reason": exc.public_text})
        result: ReconResult = reconcile(hub_lines, erp)
        row = await self.store.save_reconciliation(pharmacy_code, day, result, actor=actor.user)
        await self._audit(actor, "drugs.reconcile", f"{pharmacy_code}:{day.isoformat()}",
                          {"balanced": result.balanced,
                           "differences": len(result.differences)}, "ok")
        if not result.balanced:
            log.error("ALERT F11 对账不平 %s %s: %d differences", pharmacy_code, day,
                      len(result.differences))
        return Answer(200, masked(row))

    # ------------------------------------------------------------ the clock

    async def tick(self) -> dict[str, Any]:
        """One round of the clock: receipts due (3084), yesterday's 对账 not yet run, the
        catalogue when older than ``catalogue_s``. Durable: everything it looks at is in
        the database, so a restart misses nothing."""
        out: dict[str, Any] = {"received": 0, "reconciled": 0, "catalogue": False}
        now = self.now()
        due = await self.store.due_for_receipt(
            now - timedelta(days=self.settings.auto_receive_days))
        for no in due:
            got = await self.received(no, actor=CLOCK.user, auto=True)
            out["received"] += int(got.status == 200 and not got.body.get("duplicate"))
        synced = await self.store.catalogue_synced_at()
        if synced is None or (now - synced).total_seconds() > self.settings.catalogue_s:
            out["catalogue"] = (await self.sync_catalogue()).status == 200
        if self.settings.reconcile and self.pharmacy is not None:
            yesterday = date.fromisoformat(beijing_day(now)) - timedelta(days=1)
            for code in await self.store.pharmacies_of(yesterday):
                if await self.store.reconciliation(code, yesterday) is None:
                    got = await self.reconcile(code, yesterday, CLOCK)
                    out["reconciled"] += int(got.status == 200)
        return out

    # ------------------------------------------------------------ 补发

    async def resend(self, order_no: str, target: str, reason: str, actor: Actor) -> Answer:
        """补发 of an order's message to the pharmacy (the order, or its refund request) or
        to the supervision platform: the same fact, so its partner takes it once."""
        row = await self.store.order(order_no)
        if row is None:
            return _conflict(order_no, "order_no", "no such order", 404)
        status = row["status"]
        if target == "pharmacy" and status == "paid":
            msg = pharmacy_message(PHARMACY_ORDER, order_payload(row))
        elif target == "pharmacy" and status == "return_requested":
            msg = pharmacy_message(PHARMACY_REFUND, refund_payload(
                row, row["return_kind"], row["reason"]))
        elif target == "supervision" and row["paid_day"]:
            catalogue = await self.store.catalogue(i["drug_code"] for i in json.loads(
                row["items"]))
            msg = supervision_order(row, frozenset(c for c, d in catalogue.items() if d.rx)) \
                if status not in ("refunded", "erp_rejected") else supervision_refund(
                row, money(row["refund_amount"] or row["total"]), row["reason"])
        else:
            return _conflict(order_no, "target", f"nothing to resend to {target}: the order "
                             f"is {status}")
        await self.publisher.publish(msg)
        await self.store.note(order_no, "resend", actor.user, {"target": target,
                                                                "reason": reason})
        await self._audit(actor, "drugs.resend", order_no, {"target": target, "type": msg.type,
                                                             "reason": reason}, "ok")
        return Answer(200, {"order_no": order_no, "resent": msg.type})

    async def _audit(self, actor: Actor, action: str, target: str, detail: dict[str, Any],
                     outcome: str) -> None:
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, action, target, detail, outcome)


def _status(order: dict[str, Any] | None) -> str:
    return str(order["status"]) if order else "unknown"


def _conflict(order_no: str, field_: str, reason: str, status: int = 409) -> Answer:
    return Answer(status, {"order_no": order_no, "code": "CONFLICT" if status == 409
                           else "NOT_FOUND", "refused": [{"field": field_, "reason": reason}]})
