"""F10 退费: the lanes from core's 退费审核 to finance and back (seed 003 1916-1923, 2244-2265).

    refund.arrival   ask tax whether the money arrived (到账, 1916/2260): QueryPersonArrivals
                     or QueryUnitArrivals for the order's months; nothing arrived, or less
                     than the refund, refuses the order (field and reason to core). A
                     税务退费申请 (source 2) also sends tax its 复核核验 result and time
                     (RefundReviewFeedback, 2244) on the ``tax.collection`` lane.
    refund.finance   an order (a version of it) to 用友, and 退费回退 (withdraw), on one lane
                     so the entity gate keeps them in order per order. An order no longer
                     ``queued`` (withdrawn meanwhile) is not sent; finance answers success or
                     failure per order (2265).
    refund.closure   a page of a 旬 销号 batch to finance; the page's and finance's totals
                     are checked.
    refund.core      H7101: where an order stands, to core (refunded only on finance's
                     已退费 flag).

Every state change is a compare-and-set in ``storage.refunds``: whoever loses a race
(a withdraw against finance's answer, a callback against a withdraw) sees the state
the winner left and does nothing more. Finance's 已退费 callback is a door
(``services.refunds.RefundDesk.callback``), not a lane.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from adapters.core.port import CorePort
from adapters.finance.port import FinancePort
from adapters.tax.port import TaxPort
from contracts.clock import today_beijing
from contracts.envelope import HubMessage, new_id
from contracts.errors import (
    BusinessRejected,
    ClientError,
    HubError,
    PermanentError,
    ValidationFailed,
)
from contracts.finance import (
    ARRIVAL,
    CLOSURE,
    CORE_STATUS,
    ORDER,
    PARTNER,
    WITHDRAW,
    ClosurePage,
    RefundOrder,
    batch_serial,
    core_status_message,
    order_message,
    parse_money,
    to_fen,
)
from contracts.masking import mask_text
from contracts.messages import operation_message, partner_serial
from contracts.taxcat import model_for, op
from kernel.runtime import Outcome, Route
from storage.journal import TxnUpdate

__all__ = ["ARRIVAL_ROUTE", "CLOSURE_ROUTE", "CORE_ROUTE", "FINANCE_ROUTE", "REFUND_ROUTES",
           "RefundDeps", "RefundRecords", "arrival_check", "check_arrival", "close_at_finance",
           "finance_failed", "review_feedback", "status_to_core", "to_finance"]

log = logging.getLogger("hub.refunds")

REVIEW_FEEDBACK: Final = "RefundReviewFeedback"


class RefundRecords(Protocol):
    """The part of ``storage.refunds.RefundStore`` the lanes use."""

    async def get(self, order_no: str) -> dict[str, Any] | None: ...

    async def move(self, order_no: str, *, expect: Iterable[str], status: str,
                   version: int | None = None, reason_field: str | None = None,
                   reason: str | None = None, finance_no: str | None = None,
                   refunded_on: Any = None, paid_at: datetime | None = None,
                   payload: str | None = None, new_version: int | None = None,
                   alert: str | None = None) -> bool: ...

    async def set_alert(self, order_no: str, alert: str) -> None: ...

    async def items(self, closure_id: str, *, statuses: Iterable[str] | None = None,
                    page: int | None = None) -> list[dict[str, Any]]: ...

    async def move_items(self, closure_id: str, *, expect: Iterable[str], status: str,
                         page: int | None = None, order_no: str | None = None) -> int: ...

    async def end_closure(self, closure_id: str, status: str, *, expect: Iterable[str],
                          reason: str = "") -> bool: ...


class RefundDeps(Protocol):
    """``routes.refunds``: tax (到账), core (status), finance and the F10 store."""

    @property
    def tax(self) -> TaxPort: ...
    @property
    def core(self) -> CorePort: ...
    @property
    def refunds(self) -> RefundRecords | None: ...
    @property
    def finance(self) -> FinancePort | None: ...


def _store(deps: RefundDeps) -> RefundRecords:
    if deps.refunds is None:
        raise ClientError("this hub has no refund store", partner=PARTNER)
    return deps.refunds


def _finance(deps: RefundDeps) -> FinancePort:
    if deps.finance is None:
        raise ClientError("this hub has no finance client (partners.erp_finance)",
                          partner=PARTNER)
    return deps.finance


def _order(msg: HubMessage) -> RefundOrder:
    return RefundOrder.model_validate({k: v for k, v in msg.payload.items() if k != "version"})


def _txn(msg: HubMessage, status: str, code: str = "", text: str = "") -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, str(msg.payload.get("order_no")
                                                       or msg.payload.get("batch_id") or "-"),
                     msg.source, status, code, text[:1000], attempts=msg.attempt + 1)


def _skipped(msg: HubMessage, row: dict[str, Any] | None) -> Outcome:
    """Nothing to do: the order moved on meanwhile (withdrawn, a newer version)."""
    state = "unknown" if row is None else f"{row['status']} v{row['version']}"
    return Outcome(txn=_txn(msg, "delivered", "SKIPPED", f"order is {state}"),
                   detail={"skipped": state})


# ------------------------------------------------------------------ 到账

async def arrival_check(order: RefundOrder, tax: TaxPort, serial: str) -> tuple[str, str, int]:
    """(field, reason, fen arrived): ``field`` empty when tax's 到账 for the order's months
    covers its amount; else the field to blame (seed 1916: 税务系统未返回到账数据则给出提示)."""
    if order.payer_kind == "person":
        name, params = "QueryPersonArrivals", {"id_number": order.id_number}
    else:
        name, params = "QueryUnitArrivals", {"unit_credit_code": order.unit_credit_code}
    req = model_for(name).model_validate(params | {"period_start": order.period_start,
                                                   "period_end": order.period_end})
    records = await tax.query(name, req, serial=serial)
    arrived = sum(int(str(r.get("paid_amount") or 0)) for r in records)
    if not records:
        return ("period_start", f"税务系统未返回到账数据: no 到账 at tax for "
                                f"{order.period_start}-{order.period_end}: the money never "
                                "arrived", 0)
    if to_fen(order.amount) > arrived:
        return ("amount", f"{order.amount:.2f} is more than the {Decimal(arrived) / 100:.2f} "
                          "that arrived at tax for these months", arrived)
    return "", "", arrived


def review_feedback(order: RefundOrder, passed: bool, text: str) -> HubMessage:
    """社保费退费复核核验信息反馈 (2244): 核验结果 and 核验时间 to tax."""
    o = op(REVIEW_FEEDBACK)
    payload: dict[str, Any] = {"refund_no": order.refund_no, "review_result":
                               "1" if passed else "2",
                               "review_time": order.reviewed_at.isoformat()}
    if text:
        payload["result_text"] = text[:200]
    model_for(REVIEW_FEEDBACK).model_validate(payload)
    return operation_message(o, payload, source="hub", target="tax", correlation_id=new_id())


async def check_arrival(msg: HubMessage, deps: RefundDeps) -> Outcome:
    store = _store(deps)
    order = _order(msg)
    row = await store.get(order.order_no)
    if row is None or row["status"] != "received":
        return _skipped(msg, row)
    if order.review_result == "2":
        field, reason, arrived = "review_result", "复核核验不通过: core's review did not pass", 0
    else:
        field, reason, arrived = await arrival_check(order, deps.tax, partner_serial(msg))
    outputs: list[HubMessage] = []
    if order.source == "2":
        outputs.append(review_feedback(order, not field, reason))
    detail = {"order_no": order.order_no, "arrived_fen": arrived, "refused": field}
    if field:
        if await store.move(order.order_no, expect=("received",), status="refused",
                            reason_field=field, reason=reason):
            outputs.append(core_status_message(order.order_no, 1, "refused",
                                               reason_field=field, reason=reason,
                                               amount=f"{order.amount:.2f}",
                                               correlation_id=msg.correlation_id))
        return Outcome(outputs=tuple(outputs), detail=detail,
                       txn=_txn(msg, "rejected", "NOT_ARRIVED" if field != "review_result"
                                else "REVIEW_FAILED", f"{field}: {reason}"))
    if await store.move(order.order_no, expect=("received",), status="queued"):
        outputs.append(order_message(order, 1, msg.correlation_id))
    return Outcome(outputs=tuple(outputs), txn=_txn(msg, "delivered"), detail=detail)


async def arrival_failed(msg: HubMessage, exc: HubError, deps: RefundDeps) -> Outcome:
    """Tax could not be asked (given up): the order stays ``received``, the caseworkers
    see it; nobody is told it is refused (the money may have arrived)."""
    log.error("ALERT 退费: 到账 of order %s could not be checked at tax: %s",
              msg.payload.get("order_no"), mask_text(exc.public_text))
    if deps.refunds is not None:
        await deps.refunds.set_alert(str(msg.payload.get("order_no") or ""),
                                     f"到账 not checked: {exc.public_text}")
    return Outcome(txn=_txn(msg, "rejected" if isinstance(exc, PermanentError) else "dead",
                            exc.public_code, exc.public_text))


# ------------------------------------------------------------------ finance

async def to_finance(msg: HubMessage, deps: RefundDeps) -> Outcome:
    if msg.type == WITHDRAW:
        return await _withdraw(msg, deps)
    store = _store(deps)
    order_no, version = str(msg.payload["order_no"]), int(msg.payload["version"])
    row = await store.get(order_no)
    if row is None or row["status"] != "queued" or row["version"] != version:
        return _skipped(msg, row)  # withdrawn (or corrected) meanwhile: never sent
    answer = await _finance(deps).submit_order(msg.payload, serial=partner_serial(msg))
    detail = {"order_no": order_no, "version": version, "result": answer.result}
    if answer.result == "success":
        await store.move(order_no, expect=("queued",), version=version, status="sent",
                         finance_no=answer.finance_no)
        return Outcome(txn=_txn(msg, "delivered"), detail=detail)
    reason = answer.reason or "finance refused the order"
    outputs: tuple[HubMessage, ...] = ()
    if await store.move(order_no, expect=("queued",), version=version, status="failed",
                        reason_field="payee", reason=reason):
        outputs = (core_status_message(order_no, version, "failed", reason_field="payee",
                                       reason=reason, amount=str(msg.payload.get("amount")),
                                       correlation_id=msg.correlation_id),)
    return Outcome(outputs=outputs, txn=_txn(msg, "rejected", "FINANCE_FAILURE", reason),
                   detail=detail)


async def _withdraw(msg: HubMessage, deps: RefundDeps) -> Outcome:
    store = _store(deps)
    order_no, version = str(msg.payload["order_no"]), int(msg.payload["version"])
    answer = await _finance(deps).withdraw(order_no, version, str(msg.payload.get("reason")
                                                                  or "退费回退"),
                                           serial=partner_serial(msg))
    outputs: tuple[HubMessage, ...] = ()
    if answer.result == "withdrawn":
        if await store.move(order_no, expect=("withdrawing",), status="withdrawn"):
            outputs = (core_status_message(order_no, version, "withdrawn",
                                           correlation_id=msg.correlation_id),)
        return Outcome(outputs=outputs, txn=_txn(msg, "delivered"),
                       detail={"order_no": order_no, "result": "withdrawn"})
    # finance paid before the withdrawal reached it: the order is refunded, not withdrawn
    reason = f"退费回退 too late: finance paid it at {answer.paid_at}"
    if await store.move(order_no, expect=("withdrawing",), status="refunded",
                        refunded_on=today_beijing(), paid_at=answer.paid_at,
                        finance_no=answer.finance_no, reason_field="order_no", reason=reason):
        row = await store.get(order_no)
        outputs = (core_status_message(order_no, version, "refunded", reason_field="order_no",
                                       reason=reason, amount=str((row or {}).get("amount", "")),
                                       finance_no=answer.finance_no,
                                       at=answer.paid_at.isoformat() if answer.paid_at else "",
                                       correlation_id=msg.correlation_id),)
    return Outcome(outputs=outputs, txn=_txn(msg, "rejected", "ALREADY_PAID", reason),
                   detail={"order_no": order_no, "result": "paid"})


async def finance_failed(msg: HubMessage, exc: HubError, deps: RefundDeps) -> Outcome:
    """An order finance refused outright, or gave up on: ``failed`` (a 账户更正 sends it
    again), core told. A withdrawal that could not be confirmed: an alert; the order stays
    ``withdrawing`` (retry it from the DLQ); finance was never told to pay it anyway."""
    order_no = str(msg.payload.get("order_no") or "")
    status = "rejected" if isinstance(exc, PermanentError) else "dead"
    if msg.type == WITHDRAW:
        log.error("ALERT 退费回退 of order %s not confirmed by finance: %s", order_no,
                  mask_text(exc.public_text))
        if deps.refunds is not None:
            await deps.refunds.set_alert(order_no, f"退费回退 not confirmed: {exc.public_text}")
        return Outcome(txn=_txn(msg, status, exc.public_code, exc.public_text))
    version = int(msg.payload.get("version") or 0)
    outputs: tuple[HubMessage, ...] = ()
    if deps.refunds is not None and await deps.refunds.move(
            order_no, expect=("queued",), version=version, status="failed",
            reason_field="order_no", reason=f"{exc.public_code}: {exc.public_text}"):
        outputs = (core_status_message(order_no, version, "failed", reason_field="order_no",
                                       reason=exc.public_text,
                                       amount=str(msg.payload.get("amount")),
                                       correlation_id=msg.correlation_id),)
    return Outcome(outputs=outputs, txn=_txn(msg, status, exc.public_code, exc.public_text))


# ------------------------------------------------------------------ 销号

async def close_at_finance(msg: HubMessage, deps: RefundDeps) -> Outcome:
    """A page of a 旬 销号 batch; finance answers the count and total it took, which must be
    the page's."""
    store = _store(deps)
    page = ClosurePage.model_validate(msg.payload)  # totals checked again before sending
    answer = await _finance(deps).send_closure(msg.payload,
                                               serial=batch_serial(page.batch_id, page.page))
    try:
        took, total = int(answer.get("count", -1)), parse_money(answer.get("total"))
    except (TypeError, ValueError) as exc:
        raise BusinessRejected("TOTALS", f"finance's answer has no count/total: {exc}",
                               partner=PARTNER) from None
    if (took, total) != (page.count, page.total):
        raise BusinessRejected("TOTALS", f"finance took {took} for {total:.2f}, the page is "
                               f"{page.count} for {page.total:.2f}", partner=PARTNER)
    await store.move_items(page.batch_id, expect=("pending", "queued"), status="sent",
                           page=page.page)
    if not await store.items(page.batch_id, statuses=("pending", "queued")):
        await store.end_closure(page.batch_id, "done", expect=("sending",))
    return Outcome(txn=_txn(msg, "delivered"),
                   detail={"batch_id": page.batch_id, "page": page.page, "count": page.count,
                           "total": f"{page.total:.2f}"})


async def closure_failed(msg: HubMessage, exc: HubError, deps: RefundDeps) -> Outcome:
    batch = str(msg.payload.get("batch_id") or "")
    log.error("ALERT 退费销号 batch %s page %s not taken by finance: %s", batch,
              msg.payload.get("page"), mask_text(exc.public_text))
    if deps.refunds is not None:
        await deps.refunds.end_closure(batch, "failed", expect=("sending",),
                                       reason=f"page {msg.payload.get('page')}: "
                                              f"{exc.public_code}: {exc.public_text}")
    return Outcome(txn=_txn(msg, "rejected" if isinstance(exc, PermanentError) else "dead",
                            exc.public_code, exc.public_text))


# ------------------------------------------------------------------ core

async def status_to_core(msg: HubMessage, deps: RefundDeps) -> Outcome:
    """H7101; core deduplicates on the serial (one per order, version and status)."""
    if not msg.payload.get("order_no") or not msg.payload.get("status"):
        raise ValidationFailed([("payload.order_no", "an H7101 needs order_no and status")])
    await deps.core.refund_status(msg.payload, serial=partner_serial(msg))
    return Outcome(txn=_txn(msg, "delivered"),
                   detail={"order_no": msg.payload["order_no"],
                           "status": msg.payload["status"]})


ARRIVAL_ROUTE: Final = Route("refund.arrival", (ARRIVAL,), "tax", check_arrival, arrival_failed)
FINANCE_ROUTE: Final = Route("refund.finance", (ORDER, WITHDRAW), PARTNER, to_finance,
                             finance_failed)
CLOSURE_ROUTE: Final = Route("refund.closure", (CLOSURE,), PARTNER, close_at_finance,
                             closure_failed)
CORE_ROUTE: Final = Route("refund.core", (CORE_STATUS,), "core", status_to_core)
REFUND_ROUTES: Final[tuple[Route, ...]] = (ARRIVAL_ROUTE, FINANCE_ROUTE, CLOSURE_ROUTE,
                                           CORE_ROUTE)
