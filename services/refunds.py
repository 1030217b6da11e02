"""F10 退费: the desk behind the refund doors, the 销号 runs and the import (seed 003 1916-1923,
2244-2265, 2576, 2596; ``contracts/FINANCE.md``).

    core events   H7001 退费审核 -> order ``received``, 到账 checked on ``refund.arrival``;
                  H7002 退费回退 -> ``withdrawing``, the withdrawal to finance (always: finance
                  keeps a withdrawn order number and never pays it, even a version it gets
                  later); H7003 退费账户更正 -> a failed order ``queued`` again as version+1
    callback      finance's 已退费 flag (or failure) per order and version; only this makes
                  an order refunded; a 已退费 for a withdrawn order is an ALERT, answered 409
    closures      a 销号 batch per target and period (finance 旬, tax month), resumable like
                  F8 (``services.warnings``): items frozen once, only ``pending`` ones are
                  published, so a period run twice sends nothing the second time
    import        the 1918 template, per-row report, 到账 asked per row, good rows stored
                  in one transaction
    payments      网办大厅's question about finance's payments to a unit (2576, 2596)
    resend        补发 of an order's current final status to core (H7101), salted by the
                  caller's ``resend_id``; never a payment order to finance (issue 12)

Every answer to core or finance is given only after what it caused was published with
a broker confirm; a repeat of the same event re-publishes the same messages (same
idempotency keys, absorbed downstream), so an answer lost on the way is never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from adapters.finance.port import FinancePort
from adapters.tax.port import TaxPort
from contracts.clock import today_beijing
from contracts.envelope import HubMessage, idempotency_key, new_id
from contracts.errors import ValidationFailed, field_errors
from contracts.finance import (
    CORE_STATUS,
    FINAL_STATUSES,
    IMPORT_COLUMNS,
    INFNO_APPROVED,
    INFNO_CORRECTED,
    INFNO_WITHDRAW,
    MAX_IMPORT_ROWS,
    TARGETS,
    AccountCorrection,
    ClosureItem,
    ClosurePage,
    FinanceCallback,
    ImportRow,
    PaymentQuery,
    RefundOrder,
    Withdrawal,
    arrival_message,
    check_import_row,
    check_total,
    closure_id,
    closure_message,
    core_status_message,
    import_aliases,
    order_message,
    parse_event,
    parse_period,
    previous_period,
    to_fen,
    withdraw_message,
)
from contracts.masking import mask_id, mask_name, mask_text
from contracts.messages import operation_message
from contracts.student_batch import cell_text, match_headers
from contracts.taxcat import model_for, op
from jobs.student_batch import read_table
from kernel.deps import Publisher
from services.audit import Actor
from storage.audit import AuditLog
from storage.journal import Journal, LogEntry, TxnUpdate
from storage.refunds import RefundStore, masked_order

__all__ = ["CLOSURE_CHECK_S", "RESENDABLE", "CallbackRefused", "RefundDesk"]

log = logging.getLogger("hub.refunds")

CLOSURE_CHECK_S: Final = 3600.0
"""How often the hub looks for an ended 旬/month whose 销号 batch is not done."""
IMPORT_CONCURRENCY: Final = 8
WRITE_OFF: Final = "RefundWriteOff"
RESENDABLE: Final = FINAL_STATUSES | {"failed"}
"""The states core has been told and that stay until core acts: refunded, withdrawn,
refused, and failed (final for its version: only core's 账户更正 moves it on)."""


class CallbackRefused(Exception):
    """Finance's callback refused: HTTP status, code, field and reason."""

    def __init__(self, status: int, code: str, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status, self.code, self.field, self.reason = status, code, field, reason


def _unknown(order_no: str) -> ValidationFailed:
    return ValidationFailed([("data.order_no", f"unknown order {order_no!r}")])


@dataclass
class RefundDesk:
    """F10's work; built per request from the hub's parts (``api.refunds``)."""

    store: RefundStore
    publisher: Publisher
    journal: Journal | None = None
    tax: TaxPort | None = None
    finance: FinancePort | None = None
    audit: AuditLog | None = None

    # ------------------------------------------------------------ core's events

    async def core_event(self, infno: str, msgid: str, raw: object) -> dict[str, Any]:
        """H7001-H7003 ``input`` -> what the hub did; ``ValidationFailed`` naming
        ``data.<field>`` when the event is wrong or does not fit the order's state."""
        event = parse_event(infno, raw)
        cid = new_id()
        if isinstance(event, RefundOrder):
            out = await self._approved(event, cid)
        elif isinstance(event, Withdrawal):
            out = await self._withdraw(event, cid)
        else:
            assert isinstance(event, AccountCorrection)
            out = await self._corrected(event, cid)
        await self._log(infno, msgid, cid, out)
        return out

    async def _approved(self, order: RefundOrder, cid: str) -> dict[str, Any]:
        row, new = await self.store.add_order(order)
        if not new and RefundOrder.model_validate_json(row["payload"]) != order \
                and row["version"] == 1:
            raise ValidationFailed([("data.order_no", f"{order.order_no} is already an order "
                                                      "with other content")])
        if new or row["status"] == "received":
            await self.publisher.publish(arrival_message(order, cid))
        return {"order_no": order.order_no, "status": row["status"],
                "version": row["version"], "duplicate": not new}

    async def _withdraw(self, w: Withdrawal, cid: str) -> dict[str, Any]:
        for _ in range(3):  # a state that moves under us is read again
            row = await self.store.get(w.order_no)
            if row is None:
                raise _unknown(w.order_no)
            status, version = str(row["status"]), int(row["version"])
            if status == "refunded":
                raise ValidationFailed([("data.order_no", f"{w.order_no} is already refunded "
                                         "(已退费): too late for 退费回退")])
            if status == "refused":
                raise ValidationFailed([("data.order_no", f"{w.order_no} was refused: "
                                         "nothing to withdraw")])
            if status in ("withdrawing", "withdrawn"):
                if status == "withdrawing":
                    await self.publisher.publish(withdraw_message(w.order_no, version,
                                                                  w.reason, cid))
                return {"order_no": w.order_no, "status": status, "version": version,
                        "duplicate": True}
            if await self.store.move(w.order_no, expect=(status,), version=version,
                                     status="withdrawing", reason_field="", reason=w.reason):
                await self.publisher.publish(withdraw_message(w.order_no, version, w.reason,
                                                              cid))
                return {"order_no": w.order_no, "status": "withdrawing", "version": version,
                        "duplicate": False}
        raise ValidationFailed([("data.order_no", f"{w.order_no} keeps changing; try again")])

    async def _corrected(self, c: AccountCorrection, cid: str) -> dict[str, Any]:
        row = await self.store.get(c.order_no)
        if row is None:
            raise _unknown(c.order_no)
        order = RefundOrder.model_validate_json(row["payload"])
        status, version = str(row["status"]), int(row["version"])
        if status != "failed":
            if order.payee == c.payee and status in ("queued", "sent", "refunded"):
                return {"order_no": c.order_no, "status": status, "version": version,
                        "duplicate": True}  # the same correction again
            raise ValidationFailed([("data.order_no", f"{c.order_no} is {status}: only an "
                                     "order finance failed can have its account corrected")])
        corrected = order.model_copy(update={"payee": c.payee})
        if not await self.store.move(c.order_no, expect=("failed",), version=version,
                                     status="queued", new_version=version + 1,
                                     payload=corrected.model_dump_json(), reason_field="",
                                     reason=""):
            raise ValidationFailed([("data.order_no", f"{c.order_no} changed meanwhile; "
                                                      "try again")])
        await self.publisher.publish(order_message(corrected, version + 1, cid))
        return {"order_no": c.order_no, "status": "queued", "version": version + 1,
                "duplicate": False}

    async def _log(self, infno: str, msgid: str, cid: str, out: Mapping[str, Any]) -> None:
        if self.journal is None:
            return
        type_ = {INFNO_APPROVED: "refund.approved", INFNO_WITHDRAW: "refund.withdrawal",
                 INFNO_CORRECTED: "refund.correction"}[infno]
        await self.journal.write(
            LogEntry(message_id=msgid, correlation_id=cid, type=type_, partner="core",
                     direction="in", hop="ingress.core_refunds", outcome="ok",
                     detail=dict(out)),
            TxnUpdate(cid, type_, str(out["order_no"]), "core",
                      "duplicate" if out.get("duplicate") else "received", only_if_new=True))

    # ------------------------------------------------------------ finance's callback

    async def callback(self, body: bytes) -> dict[str, Any]:
        """Finance's 已退费 flag or failure of one order version; ``CallbackRefused`` for an
        unknown order (404), a wrong version (409), an amount that is not the order's (422),
        or a 已退费 for an order the hub withdrew (409, ALERT)."""
        try:
            cb = FinanceCallback.model_validate_json(body)
        except ValidationError as exc:
            f, r = field_errors(exc, default="body")[0]
            raise CallbackRefused(422, "4000", f, r) from None
        row = await self.store.get(cb.order_no)
        if row is None:
            raise CallbackRefused(404, "4040", "order_no", f"unknown order {cb.order_no!r}")
        if cb.amount != Decimal(str(row["amount"])):
            raise CallbackRefused(422, "4002", "amount", f"{cb.amount:.2f} is not the order's "
                                  f"amount {row['amount']}")
        status, version = str(row["status"]), int(row["version"])
        if cb.version != version and status != "withdrawn":
            raise CallbackRefused(409, "4092", "version", f"the order is at version {version}, "
                                  f"not {cb.version}")
        out = await (self._refunded(cb, row) if cb.status == "refunded"
                     else self._failed(cb, row))
        if self.journal is not None:
            await self.journal.write(LogEntry(
                message_id=cb.finance_no or "-", correlation_id=cb.order_no,
                type="refund.callback", partner="erp_finance", direction="in",
                hop="ingress.finance", outcome="duplicate" if out["duplicate"] else "ok",
                detail={"order_no": cb.order_no, "version": cb.version, "status": cb.status}))
        return out

    async def _refunded(self, cb: FinanceCallback, row: Mapping[str, Any]) -> dict[str, Any]:
        order_no, version = cb.order_no, cb.version
        duplicate = row["status"] == "refunded"
        if not duplicate and not await self.store.move(
                order_no, expect=("queued", "sent", "withdrawing"), version=version,
                status="refunded", refunded_on=today_beijing(), paid_at=cb.paid_at,
                finance_no=cb.finance_no):
            now = await self.store.get(order_no)
            current = str((now or {}).get("status"))
            if current != "refunded":
                alert = (f"已退费 from finance for order {order_no} v{version}, which is "
                         f"{current}: finance must not pay it; reverse the payment "
                         f"({cb.finance_no})")
                log.error("ALERT 退费: %s", alert)
                await self.store.set_alert(order_no, alert)
                raise CallbackRefused(409, "4091", "order_no", alert)
            duplicate = True
        await self.publisher.publish(core_status_message(
            order_no, version, "refunded", amount=f"{cb.amount:.2f}", finance_no=cb.finance_no,
            at=cb.paid_at.isoformat() if cb.paid_at else "", correlation_id=order_no))
        return {"order_no": order_no, "status": "refunded", "duplicate": duplicate}

    async def _failed(self, cb: FinanceCallback, row: Mapping[str, Any]) -> dict[str, Any]:
        order_no, version = cb.order_no, cb.version
        reason = cb.reason or "finance could not pay it"
        duplicate = row["status"] == "failed"
        if row["status"] == "withdrawing":  # not paid: the withdrawal finishes it
            return {"order_no": order_no, "status": "withdrawing", "duplicate": False}
        if not duplicate and not await self.store.move(
                order_no, expect=("queued", "sent"), version=version, status="failed",
                reason_field="payee", reason=reason):
            now = await self.store.get(order_no)
            raise CallbackRefused(409, "4093", "status", f"order {order_no} is "
                                  f"{(now or {}).get('status')}: a failure does not apply")
        await self.publisher.publish(core_status_message(
            order_no, version, "failed", reason_field="payee", reason=reason,
            amount=f"{cb.amount:.2f}", correlation_id=order_no))
        return {"order_no": order_no, "status": "failed", "duplicate": duplicate}

    # ------------------------------------------------------------ 销号

    async def run_closure(self, target: str, period_name: str, actor: str = "system",
                          role: str = "", today: date | None = None) -> dict[str, Any]:
        """One 销号 batch, resumable: frozen once, only pending items published."""
        period = parse_period(target, period_name)
        today = today or today_beijing()
        if period.end >= today:
            raise ValidationFailed([("period", f"{period_name} ends on {period.end}: a 销号 "
                                               "batch closes a period that has ended")])
        cid = closure_id(target, period.name)
        row = await self.store.open_closure(cid, target, period.name, period.start,
                                            period.end, actor)
        if row["status"] == "collecting":
            await self.store.freeze(cid, await self.store.refunded_between(period.start,
                                                                           period.end))
        salt = ""
        if row["status"] == "failed":  # a caseworker runs it again: the failed pages anew
            await self.store.end_closure(cid, "sending", expect=("failed",))
            salt = f"run{row['runs']}"
            await self.store.move_items(cid, expect=("queued",), status="pending")
        row = await self.store.closure(cid) or row
        items = await self.store.items(cid)
        try:
            check_total((Decimal(i["amount"]) for i in items), Decimal(row["total"]),
                        int(row["count"]))
        except ValidationFailed as exc:
            await self.store.end_closure(cid, "failed", expect=("sending",), reason=exc.reason)
            raise
        published = 0
        if row["status"] == "sending":
            published = await (self._to_finance(row, items, salt) if target == "finance"
                               else self._to_tax(row, items, period.month))
        if not await self.store.items(cid, statuses=("pending", "queued")) or \
                (target == "tax" and not await self.store.items(cid, statuses=("pending",))):
            await self.store.end_closure(cid, "done", expect=("sending",))
        final = await self.store.closure(cid) or row
        if self.audit is not None:
            await self.audit.record(actor, role, "refunds.closure", cid,
                                    {"count": final["count"], "total": final["total"],
                                     "published": published, "runs": final["runs"]})
        log.info("F10 销号 %s: %s orders, %s yuan, %d published, %s", cid, final["count"],
                 final["total"], published, final["status"])
        return {"batch_id": cid, "target": target, "period": period.name,
                "start_date": period.start.isoformat(), "end_date": period.end.isoformat(),
                "count": final["count"], "total": final["total"], "pages": final["pages"],
                "published": published, "status": final["status"], "runs": final["runs"]}

    async def _to_finance(self, row: Mapping[str, Any], items: Sequence[Mapping[str, Any]],
                          salt: str) -> int:
        pages: dict[int, list[Mapping[str, Any]]] = {}
        for i in items:
            pages.setdefault(int(i["page"]), []).append(i)
        published = 0
        for n, page_items in sorted(pages.items()):
            if not any(i["status"] == "pending" for i in page_items):
                continue
            lines = [ClosureItem(order_no=i["order_no"], version=i["version"],
                                 amount=i["amount"], refunded_on=i["refunded_on"])
                     for i in page_items]
            page = ClosurePage(
                batch_id=row["id"], period=row["period"], start_date=row["start_date"],
                end_date=row["end_date"], page=n, pages=int(row["pages"]),
                batch_count=int(row["count"]), batch_total=row["total"], count=len(lines),
                total=sum((x.amount for x in lines), Decimal("0")), items=lines)
            msg = closure_message(page)
            if salt:
                msg = msg.model_copy(update={"idempotency_key": f"{msg.idempotency_key}:{salt}"})
            await self.publisher.publish(msg)
            await self.store.move_items(row["id"], expect=("pending",), status="queued", page=n)
            published += 1
        return published

    async def _to_tax(self, row: Mapping[str, Any], items: Sequence[Mapping[str, Any]],
                      month: str) -> int:
        """退费销号信息反馈 (按月, 2249): one RefundWriteOff per refunded order, in fen."""
        o = op(WRITE_OFF)
        published = 0
        for i in items:
            if i["status"] != "pending":
                continue
            payload = {"write_off_month": month, "refund_no": i["refund_no"] or i["order_no"],
                       "amount": to_fen(Decimal(i["amount"]))}
            model_for(WRITE_OFF).model_validate(payload)
            await self.publisher.publish(operation_message(o, payload, source="hub",
                                                           target="tax",
                                                           correlation_id=new_id()))
            await self.store.move_items(row["id"], expect=("pending",), status="queued",
                                        order_no=i["order_no"])
            published += 1
        return published

    async def closure_tick(self) -> None:
        """The ticker: the last ended 旬 (finance) and month (tax), if not done yet."""
        today = today_beijing()
        for target in TARGETS:
            period = previous_period(target, today)
            row = await self.store.closure(closure_id(target, period.name))
            if row is None or row["status"] in ("collecting", "sending"):
                await self.run_closure(target, period.name, "system", "ticker", today=today)

    # ------------------------------------------------------------ import (1918)

    async def import_file(self, filename: str, raw: bytes, actor: str,
                          role: str = "caseworker") -> dict[str, Any]:
        """A refund import file -> per-row report; good rows (valid, 到账 at tax) stored in
        one transaction. The same content again answers the first report."""
        import_id = "TF" + hashlib.sha256(raw).hexdigest()[:30].upper()
        known = await self.store.import_report(import_id)
        if known is not None:
            return known | {"duplicate": True}
        suffix = Path(filename).suffix.lower() or ".csv"
        if suffix not in (".csv", ".txt", ".xlsx", ".xlsm"):
            raise ValidationFailed([("文件", f"{suffix} is not CSV or XLSX")])
        rows, numbers = _read(filename, suffix, raw)
        refused: list[dict[str, Any]] = []
        good: list[tuple[int, ImportRow]] = []
        seqs: dict[int, int] = {}
        spans: dict[str, list[tuple[str, str, int]]] = {}
        for row_no, cells in zip(numbers, rows, strict=True):
            try:
                r = check_import_row(cells)
            except ValidationFailed as exc:
                refused += [{"row": row_no, "field": f, "reason": mask_text(m)}
                            for f, m in exc.errors]
                continue
            if r.seq in seqs:
                refused.append({"row": row_no, "field": "序号",
                                "reason": f"序号 {r.seq} repeats row {seqs[r.seq]}"})
                continue
            clash = next((n for s, e, n in spans.get(r.id_number, [])
                          if s <= r.period_end and r.period_start <= e), None)
            if clash is not None:
                refused.append({"row": row_no, "field": "退费起始时间",
                                "reason": f"overlaps row {clash} of the same person"})
                continue
            seqs[r.seq] = row_no
            spans.setdefault(r.id_number, []).append((r.period_start, r.period_end, row_no))
            good.append((row_no, r))
        arrived = await self._arrivals(import_id, good)
        kept: list[dict[str, Any]] = []
        for (row_no, r), fen in zip(good, arrived, strict=True):
            if fen is None:
                refused.append({"row": row_no, "field": "退费起始时间",
                                "reason": f"税务系统未返回到账数据: no 到账 at tax for "
                                          f"{r.period_start}-{r.period_end}"})
                continue
            kept.append({"row_no": row_no, "seq": r.seq, "name": r.name,
                         "id_number": r.id_number, "period_start": r.period_start,
                         "period_end": r.period_end, "arrived_fen": fen})
        refused.sort(key=lambda x: (x["row"], x["field"]))
        report = {"import_id": import_id, "filename": filename, "rows": len(rows),
                  "accepted": len(kept), "refused_rows": len({x["row"] for x in refused}),
                  "refused": refused,
                  "accepted_rows": [{"row": k["row_no"], "seq": k["seq"],
                                     "name": mask_name(k["name"]),
                                     "id_number": mask_id(k["id_number"]),
                                     "period_start": k["period_start"],
                                     "period_end": k["period_end"],
                                     "arrived": f"{Decimal(k['arrived_fen']) / 100:.2f}"}
                                    for k in kept],
                  "duplicate": False}
        if not await self.store.save_import(import_id, filename, actor, len(rows), kept,
                                            report):
            return (await self.store.import_report(import_id) or report) | {"duplicate": True}
        if self.audit is not None:
            await self.audit.record(actor, role, "refunds.import", import_id,
                                    {"filename": filename, "rows": len(rows),
                                     "accepted": len(kept), "refused": report["refused_rows"]})
        return report

    async def _arrivals(self, import_id: str, good: Sequence[tuple[int, ImportRow]]
                        ) -> list[int | None]:
        """Fen arrived at tax per row (None: nothing arrived); a tax failure fails the whole
        import (nothing stored)."""
        if self.tax is None:
            raise ValidationFailed([("文件", "this hub cannot ask tax for 到账")])
        tax = self.tax
        gate = asyncio.Semaphore(IMPORT_CONCURRENCY)

        async def one(row_no: int, r: ImportRow) -> int | None:
            req = model_for("QueryPersonArrivals").model_validate(
                {"id_number": r.id_number, "period_start": r.period_start,
                 "period_end": r.period_end})
            async with gate:
                records = await tax.query("QueryPersonArrivals", req,
                                          serial=f"{import_id}-{row_no}")
            if not records:
                return None
            return sum(int(str(x.get("paid_amount") or 0)) for x in records)

        return list(await asyncio.gather(*(one(n, r) for n, r in good)))

    # ------------------------------------------------------------ 补发 (issue 12)

    async def resend(self, order_no: str, *, reason: str, actor: Actor,
                     resend_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """补发 of an order's CURRENT final status (``RESENDABLE``) to core: H7101 on lane
        ``refund.core``, for a core that lost it or a dead-lettered status.

        Only the status to core, never the payment order to finance: an order is paid on
        finance's 已退费 flag, so re-sending it could pay twice or pay a withdrawn order;
        finance gets an order again only through core's 退费账户更正 (a new version). An
        order still on its way (received, queued, sent, withdrawing) is 409: its status
        is not final, core hears it when it is. The message is salted with ``resend_id``
        (generated when absent): a new 补发 is a new delivery with a new serial, the same
        ``resend_id`` again (the caller's retry) is the same delivery. 404 unknown.
        Audited as ``refund.resend``."""
        resend_id = resend_id or uuid.uuid4().hex
        detail: dict[str, Any] = {"reason": mask_text(reason)[:200], "resend_id": resend_id}
        target = mask_text(order_no)
        row = await self.store.get(order_no)
        if row is None:
            await self._audit(actor, "refund.resend", target, detail, "not_found")
            return 404, _resend_refused(order_no, "order_no", f"no order {order_no}")
        status, version = str(row["status"]), int(row["version"])
        if status not in RESENDABLE:
            await self._audit(actor, "refund.resend", target, detail | {"status": status},
                              "conflict")
            return 409, _resend_refused(order_no, "order_no", (
                f"order {order_no} is {status}, not final: nothing to resend (core hears "
                "its status when it is final; a payment order is never re-sent to finance)"))
        paid_at = row.get("paid_at")
        msg = core_status_message(
            order_no, version, status, reason_field=str(row.get("reason_field") or ""),
            reason=str(row.get("reason") or ""), amount=str(row.get("amount") or ""),
            finance_no=str(row.get("finance_no") or ""),
            at=paid_at.isoformat() if paid_at is not None else "", correlation_id=order_no)
        await self.publisher.publish(_salted(msg, resend_id))
        await self._audit(actor, "refund.resend", target, detail | {
            "status": status, "version": version}, "accepted")
        return 200, {"order_no": order_no, "resend_id": resend_id, "status": status,
                     "version": version, "sent": ["core"]}

    async def _audit(self, actor: Actor, action: str, target: str, detail: dict[str, Any],
                     outcome: str) -> None:
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, action, target, detail, outcome)

    # ------------------------------------------------------------ views

    async def order(self, order_no: str) -> dict[str, Any] | None:
        row = await self.store.get(order_no)
        return None if row is None else masked_order(row)

    async def summary(self) -> dict[str, Any]:
        counts = await self.store.counts()
        return {"orders": counts, "final": sum(counts[s] for s in FINAL_STATUSES)}

    async def payments(self, query: PaymentQuery) -> dict[str, Any]:
        """网办大厅: finance's payments to the unit (finance's totals checked by the client)."""
        if self.finance is None:
            raise ValidationFailed([("unit_credit_code", "this hub has no finance client")])
        answer = await self.finance.payments(query)
        return answer.model_dump(mode="json")


def _resend_refused(order_no: str, field_: str, reason: str) -> dict[str, Any]:
    return {"order_no": order_no, "accepted": False,
            "refused": [{"field": field_, "reason": mask_text(reason)}]}


def _salted(msg: HubMessage, resend_id: str) -> HubMessage:
    """H7101 as a 补发: ``resend_id`` in the payload and in the idempotency key (hence a
    new serial at core, ``contracts.messages.partner_serial``)."""
    p = msg.payload
    key = idempotency_key(CORE_STATUS, f"{p['order_no']}:{p['version']}:{p['status']}", {},
                          f"resend:{resend_id}")
    return msg.model_copy(update={"idempotency_key": key,
                                  "payload": p | {"resend_id": resend_id}})


def _read(filename: str, suffix: str, raw: bytes) -> tuple[list[dict[str, object]], list[int]]:
    """The file's rows by field (header found first, blank rows skipped), with row numbers;
    ``ValidationFailed`` (field 文件/表头) when it cannot be read or lacks a column."""
    rows: list[dict[str, object]] = []
    numbers: list[int] = []
    header = None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"import{suffix}"
        path.write_bytes(raw)
        with contextlib.closing(read_table(path, raw)) as table:
            for row_no, cells in table:
                if all(not cell_text(c) for c in cells):
                    continue
                if header is None:
                    if row_no <= 3 and not any(cell_text(c).strip("*＊ ") in IMPORT_COLUMNS
                                               or cell_text(c) in import_aliases()
                                               for c in cells):
                        continue  # a title row above the header
                    header = match_headers("refund", IMPORT_COLUMNS,
                                           set(IMPORT_COLUMNS.values()), cells,
                                           aliases=import_aliases())
                    continue
                rows.append(dict(header.values(cells)))
                numbers.append(row_no)
                if len(rows) > MAX_IMPORT_ROWS:
                    raise ValidationFailed([("文件", f"more than {MAX_IMPORT_ROWS} rows")])
    if header is None:
        raise ValidationFailed([("文件", f"{filename}: 文件为空：没有表头行")])
    if not rows:
        raise ValidationFailed([("文件", "没有数据行")])
    return rows, numbers

