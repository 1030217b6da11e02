"""F15 大病保险承办机构: core's settlements, payments, financing, batches, clues (seed 004).

    receive_event   core's H8501: a settlement's 大病 segment (``hifmi_pay``) is recorded once
                    per settlement id and goes to the insurer on ``insurer.shares`` (77); a 冲销
                    is refused unless its original was reported (field and reason), and follows
                    it (``HubMessage.after``)
    payment         the insurer reports a claim paid: the time limit (111) is checked
    financing       paying residents of a year from the return files, × 110 元 (39), and the
                    year's transfers (29), as a notice on ``insurer.financing``
    run_batch       赔付明细 / 分析报告 fetched from the insurer, 清算 / 轧差 frozen and sent:
                    the header must equal the rows' sums or nothing is kept; a batch received
                    or sent is not fetched or sent again, a failed send resumes with the same
                    frozen batch (the insurer drops the repeated serial)
    overdue         claims past their time limit, masked
    clue            a 疑点数据 clue on ``insurer.clues`` (123, 126), audited

Readings: ``contracts/SERIOUS_ILLNESS.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from adapters.core.translate import parse_national_request
from adapters.insurer.port import InsurerPort
from contracts.clock import today_beijing
from contracts.errors import ClientError, HubError, ValidationFailed
from contracts.masking import mask_text
from contracts.serious_illness import (
    INBOUND_KINDS,
    INFNO_SETTLEMENT,
    PARTNER,
    PER_HEAD,
    Clue,
    Reversal,
    batch_id,
    batch_serial,
    check_batch,
    clue_message,
    financing_message,
    financing_total,
    netting,
    parse_event,
    parse_period,
    schedule,
    share_message,
    share_payload,
)
from kernel.deps import Publisher
from services.audit import Actor
from storage.audit import AuditLog
from storage.serious_illness import SeriousIllnessStore, masked_share

__all__ = ["Refused", "SeriousIllnessDesk"]

log = logging.getLogger("hub.serious_illness")


class Refused(Exception):
    """A request the desk answers with a status, a field and a reason."""

    def __init__(self, status: int, code: str, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.field, self.reason = status, code, field, reason

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "reason": mask_text(self.reason)}


@dataclass(frozen=True)
class SeriousIllnessDesk:
    store: SeriousIllnessStore
    publisher: Publisher
    insurer: InsurerPort | None = None
    audit: AuditLog | None = None

    def _insurer(self) -> InsurerPort:
        if self.insurer is None:
            raise ClientError("this hub has no insurer client (partners.insurer)",
                              partner=PARTNER)
        return self.insurer

    # ------------------------------------------------------------ settlement shares (77)

    async def receive_event(self, body: bytes) -> dict[str, Any]:
        """Core's H8501. ``ValidationFailed`` for a bad envelope or record; ``Refused`` for a
        冲销 whose original the hub never had (422), or a settlement id reported again with
        other content (409). Nothing is recorded for a refusal."""
        req = parse_national_request(body, known_infnos=(INFNO_SETTLEMENT,))
        data = req.input.get("data") if isinstance(req.input, dict) else None
        if not isinstance(data, dict):
            raise ValidationFailed([("input.data", "required: the settlement or 冲销")])
        got = parse_event(data)
        if isinstance(got, list):
            raise ValidationFailed(got)
        if isinstance(got, Reversal):
            return await self._reversal(got)
        payload = share_payload(got)
        send = got.serious_illness_pay > 0
        msg = share_message(payload)
        row, created = await self.store.record_share(
            payload, idem_key=msg.idempotency_key, status="received" if send else "none")
        if not created and json.loads(row["payload"]) != payload:
            raise Refused(409, "CONFLICT", "input.data.setl_id",
                          f"settlement {got.setl_id} was reported before with other content")
        queued = send and await self._queue(row, msg)
        return {"setl_id": got.setl_id, "serious_illness_pay": payload["serious_illness_pay"],
                "share": send, "duplicate": not created,
                "status": "queued" if queued else str(row["status"])}

    async def _reversal(self, r: Reversal) -> dict[str, Any]:
        orig = await self.store.share(r.orig_setl_id)
        where = "input.data.orig_setl_id"
        if orig is None:
            raise Refused(422, "UNKNOWN_ORIGINAL", where,
                          f"no settlement {r.orig_setl_id} was reported to the hub: a 冲销 "
                          "follows its original")
        if orig["kind"] != "settle":
            raise Refused(422, "NOT_A_SETTLEMENT", where, f"{r.orig_setl_id} is itself a 冲销")
        if orig["id_number"] != r.id_number:
            raise Refused(422, "OTHER_PERSON", "input.data.certno",
                          "is not the person of the original settlement")
        if orig["status"] in ("rejected", "dead"):
            raise Refused(422, "ORIGINAL_NOT_DELIVERED", where,
                          f"the original is {orig['status']}: the insurer never had it")
        other = await self.store.reversal_of(r.orig_setl_id)
        if other is not None and other["setl_id"] != r.setl_id:
            raise Refused(409, "ALREADY_REVERSED", where,
                          f"{r.orig_setl_id} was reversed by {other['setl_id']}")
        base = json.loads(orig["payload"])
        payload = base | {"kind": "reverse", "setl_id": r.setl_id,
                          "orig_setl_id": r.orig_setl_id, "settled_at": r.settled_at}
        send = orig["status"] != "none"
        msg = share_message(payload, after=str(orig["idem_key"]))
        row, created = await self.store.record_share(
            payload, idem_key=msg.idempotency_key, status="received" if send else "none")
        if not created and json.loads(row["payload"]) != payload:
            raise Refused(409, "CONFLICT", "input.data.setl_id",
                          f"{r.setl_id} was reported before with other content")
        queued = send and await self._queue(row, msg)
        return {"setl_id": r.setl_id, "orig_setl_id": r.orig_setl_id,
                "serious_illness_pay": payload["serious_illness_pay"], "share": send,
                "duplicate": not created, "status": "queued" if queued else str(row["status"])}

    async def _queue(self, row: Mapping[str, Any], msg: Any) -> bool:
        """Publish a share still ``received`` and mark it queued (a crash between the two
        publishes it again next time: the same idempotency key, the same serial)."""
        if row["status"] != "received":
            return False
        await self.publisher.publish(msg)
        return await self.store.set_share(str(row["setl_id"]), "queued", expect=("received",))

    # ------------------------------------------------------------ claim time limit (111)

    async def payment(self, setl_id: str, paid_on: date) -> dict[str, Any]:
        """The insurer paid the claim of ``setl_id`` on ``paid_on``; whether in time."""
        row = await self.store.share(setl_id)
        if row is None or row["kind"] != "settle" or row["status"] != "delivered":
            raise Refused(404, "UNKNOWN_CLAIM", "setl_id",
                          "no claim of that settlement was delivered to the insurer")
        fresh = await self.store.mark_paid(setl_id, paid_on.isoformat())
        row = await self.store.share(setl_id) or row
        return {"setl_id": setl_id, "due_on": row["due_on"], "paid_on": row["paid_on"],
                "in_time": row["paid_on"] <= row["due_on"], "duplicate": not fresh}

    async def overdue(self, as_of: date, *, limit: int = 100,
                      offset: int = 0) -> list[dict[str, Any]]:
        return [masked_share(r) for r in await self.store.overdue(as_of, limit=limit,
                                                                   offset=offset)]

    # ------------------------------------------------------------ financing (29, 39)

    async def financing(self, year: int, actor: Actor, *, estimated: Decimal | None = None,
                        first_year: bool = False) -> dict[str, Any]:
        """Count the year's paying residents, compute 筹资 and the transfers, send the notice
        (once per year and count). ``ValidationFailed`` when no resident paid yet."""
        payers = await self.store.paying_residents(f"{year:04d}")
        if payers == 0:
            raise ValidationFailed([("year", f"no resident's payment for {year} is recorded "
                                             "in the return files yet")])
        total = financing_total(payers)
        est = estimated if estimated is not None else total
        payload = {"year": f"{year:04d}", "payers": payers, "per_head": f"{PER_HEAD:.2f}",
                   "total": f"{total:.2f}", "estimated": f"{est:.2f}", "first_year": first_year,
                   "schedule": [t.as_dict() for t in schedule(year, est, first_year=first_year,
                                                              actual=total)]}
        row, new = await self.store.add_financing(payload, actor.user)
        if new:
            await self.publisher.publish(financing_message(payload))
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, "serious_illness.financing",
                                    str(year), {"payers": payers, "total": payload["total"],
                                                "new": new})
        return payload | {"status": row["status"], "duplicate": not new}

    # ------------------------------------------------------------ batches (28, 71, 75)

    async def run_batch(self, kind: str, period: str, actor: Actor) -> dict[str, Any]:
        """One batch exchange; see the module. ``ValidationFailed`` for a bad period or a
        batch whose header does not add up (nothing kept); ``HubError`` when the insurer
        could not be reached or refused an outbound batch (a frozen batch stays to resume)."""
        try:
            period = parse_period(kind, period)
        except ValueError as exc:
            field, _, reason = str(exc).partition(": ")
            raise ValidationFailed([(field, reason)]) from None
        bid = batch_id(kind, period)
        try:
            out = await (self._inbound(kind, period, bid, actor) if kind in INBOUND_KINDS
                         else self._outbound(kind, period, bid, actor))
        except HubError as exc:
            await self._audit(actor, kind, period, {"error": exc.public_text}, "refused")
            raise
        await self._audit(actor, kind, period, {k: out[k] for k in ("status", "count",
                                                                     "total", "duplicate")})
        return out

    async def _audit(self, actor: Actor, kind: str, period: str, detail: dict[str, Any],
                     outcome: str = "ok") -> None:
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, f"serious_illness.{kind}", period,
                                    detail, outcome)

    async def _inbound(self, kind: str, period: str, bid: str, actor: Actor) -> dict[str, Any]:
        have = await self.store.batch(bid)
        if have is not None:
            return _batch_answer(have, duplicate=True)
        got = await self._insurer().fetch_batch(kind, period)
        header, rows = got.get("header"), got.get("rows")
        if not isinstance(header, dict) or not isinstance(rows, list):
            raise ValidationFailed([("header", "the insurer's batch has no header and rows")],
                                   partner=PARTNER)
        batch = check_batch(kind, period, header, rows)
        if isinstance(batch, list):
            raise ValidationFailed(batch, partner=PARTNER)
        extra: dict[str, Any] = {}
        if kind == "claims":  # rows the hub never sent as a share: noted, not refused
            unknown = [r.get("setl_id") for r in batch.rows
                       if await self.store.share(str(r.get("setl_id") or "")) is None]
            extra = {"unmatched": len(unknown)}
        row, new = await self.store.put_batch(
            bid, kind=kind, period=period, direction="in", status="received",
            count=batch.count, total=f"{batch.total:.2f}", payload=batch.as_wire() | extra,
            actor=actor.user)
        return _batch_answer(row, duplicate=not new) | extra

    async def _outbound(self, kind: str, period: str, bid: str, actor: Actor
                        ) -> dict[str, Any]:
        have = await self.store.batch(bid)
        if have is None:
            rows = await (self._clearing_rows(period) if kind == "clearing"
                          else self._netting_rows(period))
            total = sum((Decimal(r["serious_illness_pay" if kind == "clearing" else "amount"])
                         for r in rows), Decimal("0.00"))
            header = {"kind": kind, "period": period, "count": len(rows),
                      "total": f"{total:.2f}"}
            batch = check_batch(kind, period, header, rows)
            if isinstance(batch, list):  # the hub's own batch must add up: a bug otherwise
                raise ValidationFailed(batch)
            have, _ = await self.store.put_batch(
                bid, kind=kind, period=period, direction="out", status="frozen",
                count=batch.count, total=f"{batch.total:.2f}", payload=batch.as_wire(),
                serial=batch_serial(kind, period, batch.rows), actor=actor.user)
        if have["status"] == "sent":
            return _batch_answer(have, duplicate=True)
        wire = json.loads(have["payload"])
        try:
            await self._insurer().push_batch(kind, period, wire, serial=str(have["serial"]))
        except HubError as exc:
            await self.store.set_batch(bid, "failed", expect=("frozen", "failed"),
                                       reason=f"{exc.public_code}: {exc.public_text}")
            raise
        await self.store.set_batch(bid, "sent", expect=("frozen", "failed"))
        return _batch_answer(await self.store.batch(bid) or have, duplicate=False)

    async def _clearing_rows(self, year: str) -> list[dict[str, Any]]:
        return [{"setl_id": r["setl_id"], "id_number": r["id_number"],
                 "settled_at": r["settled_at"], "serious_illness_pay": r["share"]}
                for r in await self.store.year_claims(year)]

    async def _netting_rows(self, year: str) -> list[dict[str, Any]]:
        """轧差: the actual total now (paying residents after Q1's clearing) and, as negative
        rows, each transfer of the year's latest notice: the rows add up to the net."""
        notice = await self.store.latest_financing(year)
        if notice is None:
            raise ValidationFailed([("period", f"no financing notice for {year}: send one "
                                               "first (POST /admin/serious-illness/financing)")])
        payers = await self.store.paying_residents(year)
        actual = financing_total(payers)
        tranches = json.loads(notice["payload"])["schedule"]
        transferred = sum((Decimal(t["amount"]) for t in tranches), Decimal("0.00"))
        rows = [{"item": "actual", "payers": payers, "amount": f"{actual:.2f}"}]
        rows += [{"item": f"{t['kind']} {t['due']}", "amount": f"{-Decimal(t['amount']):.2f}"}
                 for t in tranches]
        log.info("F15 轧差 %s: actual %s, transferred %s, net %s", year, actual, transferred,
                 netting(actual, transferred))
        return rows

    async def batches(self) -> list[dict[str, Any]]:
        return await self.store.batches()

    # ------------------------------------------------------------ clues (123, 126)

    async def clue(self, clue: Clue, actor: Actor) -> dict[str, Any]:
        msg = clue_message(clue)
        row, new = await self.store.add_clue(msg.payload, actor.user)
        if new:
            await self.publisher.publish(msg)
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, "serious_illness.clue",
                                    clue.clue_id, {"institution": clue.institution_code,
                                                   "amount": f"{clue.amount:.2f}", "new": new})
        return {"clue_id": clue.clue_id, "status": row["status"], "duplicate": not new}

    @staticmethod
    def today() -> date:
        return today_beijing()


def _batch_answer(row: Mapping[str, Any], *, duplicate: bool) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "period": row["period"],
            "direction": row["direction"], "status": row["status"], "count": row["count"],
            "total": row["total"], "runs": row["runs"], "duplicate": duplicate}
