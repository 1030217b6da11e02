"""F7 医疗救助平台: 医疗费用查询, 结算费用同步, the monthly 医疗救助结算数据 and 阳光惠民's
救助费用 and 机构 tables (seed 003 lines 1482, 1487, 1497).

    expenses        the platform asks for a recognised 困难人员's expenses in a period:
                    answered from core (H4002), only inside the person's assistance
                    periods (按政策获取救助时间段内费用信息, 1482), masked
    receive_event   core reports one settlement (H4005): a recipient's is recorded once per
                    settlement id and goes to the platform on the lane
                    ``assistance.settlements`` (``routes.assistance``); anyone else's is
                    refused with the reason
    run_month       the month's settlements of the recipients, from core (H4003, its header
                    checked against its rows, Decimal), each with the identity its person
                    held that day (救助历史), recorded, then pushed to the platform in pages
                    with the month's header: resumable and idempotent per month
    sunshine_fees, sunshine_institutions
                    two of 阳光惠民's daily tables (the third, 救助人员, is
                    ``services.difficulty``): the day's rows not pushed yet, in pages

Every answer is masked where it leaves for anyone but the platform; the platform
itself gets full ID numbers in what the hub pushes (it keys its 救助对象 by them, as
in the record push of 1527). Readings: ``contracts/DIFFICULTY.md`` § 医疗救助平台.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from adapters.core.port import AssistanceCorePort
from adapters.core.translate import INFNO_SETTLEMENT_EVENT, parse_national_request
from adapters.difficulty.port import DifficultyPort
from contracts.assistance import (
    MED_TYPES,
    ExpenseQuery,
    Settlement,
    Totals,
    identity_at,
    month_bounds,
    page_serial,
    settlement_from_wire,
    settlement_message,
)
from contracts.clock import today_beijing
from contracts.difficulty import DEPARTMENTS, identity_label
from contracts.errors import ClientError, HubError, ValidationFailed
from contracts.masking import mask_id, mask_name, mask_text
from kernel.deps import Publisher
from services.audit import Actor, Audit
from storage.assistance import AssistanceStore, NewSettlement, masked

__all__ = ["CORE_CHUNK", "DATA_PAGE", "SUNSHINE_PAGE", "AssistanceDesk", "Refused",
           "data_row", "fee_row"]

log = logging.getLogger("hub.assistance")

DATA_PAGE: Final = 200
"""Rows of a month's 医疗救助结算数据 in one push to the platform."""
SUNSHINE_PAGE: Final = 200
"""Rows of 阳光惠民's 救助费用 or 机构 table in one push (as its 救助人员 table)."""
CORE_CHUNK: Final = 500
"""ID numbers in one H4003 call."""


class Refused(Exception):
    """A request the desk answers with a status and a reason (no such 困难人员, ...)."""

    def __init__(self, status: int, code: str, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.field, self.reason = status, code, field, reason

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "reason": mask_text(self.reason)}


def _department(code: str) -> str:
    return DEPARTMENTS.get(code, "医保局")


def _amounts(row: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(row[k]) for k in ("medfee_total", "fund_pay", "serious_illness_pay",
                                     "assistance_pay", "self_pay")}


def data_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A settlement as the platform gets it (结算费用同步 and 医疗救助结算数据): the person in
    full (the platform keys its 救助对象 by the ID number), the identity held that day."""
    return {"ref": row["id"], "setl_id": row["setl_id"], "id_number": row["id_number"],
            "name": row["name"], "month": row["month"], "settled_at": row["settled_at"],
            "institution_code": row["institution_code"],
            "institution_name": row["institution_name"], "med_type": row["med_type"],
            **_amounts(row), "identity": row["identity"],
            "label": identity_label(str(row["identity"])),
            "department": row["department"]}


def fee_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of 阳光惠民's 救助费用 table (public): the person masked, ``ref`` the hub's
    settlement id (not core's, not personal), the date only."""
    return {"ref": row["id"], "id_number": mask_id(str(row["id_number"])),
            "name": mask_name(str(row["name"])), "identity": row["identity"],
            "label": identity_label(str(row["identity"])),
            "department": _department(str(row["department"])),
            "settled_on": str(row["settled_at"])[:10],
            "institution_code": row["institution_code"],
            "institution_name": row["institution_name"], "med_type": row["med_type"],
            "med_type_label": MED_TYPES.get(str(row["med_type"]), ""), **_amounts(row)}


def _periods(held: Sequence[Mapping[str, Any]], last: date) -> list[tuple[date, date]]:
    out = []
    for h in held:
        start, end = h.get("start_date"), h.get("end_date")
        if not isinstance(start, date):
            continue
        if isinstance(end, date):
            out.append((start, end))
        elif h.get("active"):
            out.append((start, max(start, last)))
    return sorted(out)


@dataclass(frozen=True)
class AssistanceDesk:
    store: AssistanceStore
    core: AssistanceCorePort | None
    publisher: Publisher
    partners: DifficultyPort | None = None
    audit: Audit | None = None

    def _core(self) -> AssistanceCorePort:
        if self.core is None:
            raise ClientError("this hub has no core port for the 医疗救助平台", partner="core")
        return self.core

    # ------------------------------------------------------------ 医疗费用查询 (1497)

    async def expenses(self, q: ExpenseQuery) -> dict[str, Any]:
        """The person's settlements from ``q.start_date`` to ``q.end_date`` inside their
        assistance periods. ``Refused`` 404 when the hub holds no 困难人员 identity for them,
        403 when none of their periods meets the one asked; core's errors propagate
        (``HubError``)."""
        held = (await self.store.held_for([q.id_number])).get(q.id_number, [])
        if not held:
            raise Refused(404, "NOT_RECOGNISED", "id_number", "the hub holds no 困难人员 "
                          "identity for this person (人员认定 first)")
        periods = [(max(s, q.start_date), min(e, q.end_date))
                   for s, e in _periods(held, q.end_date)
                   if s <= q.end_date and e >= q.start_date]
        if not periods:
            raise Refused(403, "OUTSIDE_ASSISTANCE_PERIOD", "start_date",
                          f"the person held no assistance identity from {q.start_date} to "
                          f"{q.end_date} (按政策: expenses of the assistance periods only)")
        ask = (min(p[0] for p in periods), max(p[1] for p in periods))
        rows = await self._core().expenses(q.id_number, *ask)
        kept: list[Settlement] = []
        for s in sorted(rows, key=lambda x: (x.settled_at, x.setl_id)):
            if s.id_number == q.id_number and any(a <= s.setl_date <= b for a, b in periods) \
                    and identity_at(held, s.setl_date) is not None:
                kept.append(s)
        return {"id_number": mask_id(q.id_number), "name": mask_name(str(held[0]["name"])),
                "start_date": q.start_date.isoformat(), "end_date": q.end_date.isoformat(),
                "assistance_periods": [{"start_date": a.isoformat(), "end_date": b.isoformat()}
                                       for a, b in periods],
                "totals": Totals.of(kept).as_dict(), "excluded": len(rows) - len(kept),
                "expenses": [self._expense(s, held) for s in kept]}

    @staticmethod
    def _expense(s: Settlement, held: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        h = identity_at(held, s.setl_date) or {}
        return {"setl_id": s.setl_id, "settled_at": s.settled_at.strftime("%Y-%m-%d %H:%M:%S"),
                "institution_code": s.institution_code,
                "institution_name": s.institution_name, "med_type": s.med_type,
                "med_type_label": MED_TYPES.get(s.med_type, ""), **s.amounts(),
                "identity": h.get("identity", "")}

    # ------------------------------------------------------------ 结算费用同步 (1497)

    async def receive_event(self, body: bytes) -> dict[str, Any]:
        """Core's H4005: one settlement. A recipient's (an identity covering the settlement
        date) is recorded once per settlement id and published to the platform's lane; the
        answer says so (``duplicate`` when core reported it before). ``ValidationFailed``
        for a bad envelope or settlement (field and reason); ``Refused`` 422 for a person
        who was not a recipient that day."""
        req = parse_national_request(body, known_infnos=(INFNO_SETTLEMENT_EVENT,))
        data = req.input.get("data") if isinstance(req.input, dict) else None
        if not isinstance(data, dict):
            raise ValidationFailed([("input.data", "required: the settlement")])
        got = settlement_from_wire(data, "input.data")
        if isinstance(got, list):
            raise ValidationFailed(got)
        held = (await self.store.held_for([got.id_number])).get(got.id_number, [])
        h = identity_at(held, got.setl_date)
        if h is None:
            raise Refused(422, "NOT_RECIPIENT", "input.data.certno",
                          "not a 困难人员 the hub holds on the settlement date "
                          f"{got.setl_date}: nothing to sync to the 医疗救助平台")
        [(row, created)] = await self.store.record(
            [NewSettlement(got, str(h["identity"]), str(h["department"]))], source="event")
        queued = await self._queue(row)
        return {"setl_id": got.setl_id, "ref": row["id"], "recipient": True,
                "identity": row["identity"], "duplicate": not created and not queued,
                "status": "queued" if queued else str(row["sync_status"] or "recorded")}

    async def _queue(self, row: Mapping[str, Any]) -> bool:
        """Publish a settlement still ``pending`` and mark it queued (a crash between the two
        publishes it again next time: the same idempotency key, the same serial)."""
        if row.get("sync_status") != "pending":
            current = await self.store.settlement(str(row["id"]))
            if current is None or current["sync_status"] != "pending":
                return False
            row = current
        await self.publisher.publish(settlement_message(data_row(row)))
        return await self.store.set_sync(str(row["id"]), "queued", expect=("pending",))

    # ------------------------------------------------------------ 医疗救助结算数据 (1487)

    async def run_month(self, month: str, actor: Actor, *,
                        today: date | None = None) -> dict[str, Any]:
        """Extract, generate and push ``month``'s (yyyyMM) 医疗救助结算数据. Running it twice
        pushes nothing twice: each settlement is recorded once and pushed once; a run stopped
        by a failed page pushes the rest next time (``complete`` False, ``error``). Core's
        header must match its rows (count and every amount, to the fen), or the run fails
        and records nothing of it. Audited."""
        first, last = month_bounds(month)
        if first > (today or today_beijing()):
            raise ValidationFailed([("month", f"{month[:4]}-{month[4:]} has not begun")])
        core = self._core()
        await self.store.start_run(month, actor.user)
        try:
            recipients = await self.store.recipients_of(first, last)
            held = await self.store.held_for(recipients)
            found: list[Settlement] = []
            for i in range(0, len(recipients), CORE_CHUNK):
                chunk = recipients[i:i + CORE_CHUNK]
                header, rows = await core.month_settlements(month, chunk)
                diff = header.differences(Totals.of(rows))
                if diff:
                    raise ValidationFailed([("output.header", "core's header does not match "
                                             "its records: " + "; ".join(diff))],
                                           partner="core")
                found.extend(rows)
            items, excluded = [], 0
            for s in found:
                h = identity_at(held.get(s.id_number, []), s.setl_date) \
                    if s.month == month else None
                if h is None:
                    excluded += 1
                    continue
                items.append(NewSettlement(s, str(h["identity"]), str(h["department"])))
            await self.store.record(items, source="run")
            totals = await self.store.data_totals(month)
            pushed, pages, error = await self._push_month(month, totals)
        except HubError as exc:
            await self.store.finish_run(month, status="failed",
                                        error=f"{exc.public_code}: {exc.public_text}")
            raise
        await self.store.finish_run(month, status="failed" if error else "done",
                                    recipients=len(recipients), rows=totals.count,
                                    excluded=excluded, pushed=pushed, pages=pages,
                                    totals=totals, error=error)
        out = {"month": f"{month[:4]}-{month[4:]}", "recipients": len(recipients),
               "settlements": len(found), "excluded": excluded, "rows": totals.count,
               "totals": totals.as_dict(), "pushed": pushed, "pages": pages,
               "error": mask_text(error), "complete": not error}
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, "assistance.settlement_run",
                                    month, out, "failed" if error else "ok")
        return out

    async def _push_month(self, month: str, totals: Totals) -> tuple[int, int, str]:
        pushed = pages = 0
        while True:
            due = await self.store.data_due(month, limit=DATA_PAGE)
            if not due:
                return pushed, pages, ""
            if self.partners is None:
                return pushed, pages, "this hub has no F7 partner client"
            refs = [str(r["id"]) for r in due]
            page = {"month": f"{month[:4]}-{month[4:]}", "header": totals.as_dict(),
                    "page": pages + 1, "rows": [data_row(r) for r in due]}
            try:
                await self.partners.push_settlement_data(
                    page, serial=page_serial("settlement-data", month, refs))
            except HubError as exc:
                error = f"{exc.public_code}: {exc.public_text}"
                log.error("ALERT 提醒预警: F7 医疗救助结算数据 %s: a page of %d rows failed: %s",
                          month, len(due), mask_text(error))
                return pushed, pages, error
            await self.store.data_pushed(refs)
            pushed, pages = pushed + len(due), pages + 1

    async def runs(self, *, limit: int = 24) -> list[dict[str, Any]]:
        return [masked(r) for r in await self.store.runs(limit=limit)]

    # ------------------------------------------------------------ 阳光惠民 (1497)

    async def sunshine_fees(self, day: date) -> dict[str, Any]:
        """The day's 救助费用 table: the settlements of the day's year the hub holds, each
        row once a day, in pages; a failed page stops the table (the next run that day
        pushes the rest)."""
        if self.partners is None:
            return {"pushed": 0, "pages": 0, "failed": 0,
                    "error": "this hub has no F7 partner client"}
        key = day.strftime("%Y%m%d")
        pushed = pages = 0
        while True:
            due = await self.store.fees_due(key, date(day.year, 1, 1), day,
                                            limit=SUNSHINE_PAGE)
            if not due:
                return {"pushed": pushed, "pages": pages, "failed": 0, "error": ""}
            refs = [str(r["id"]) for r in due]
            error = await self._sunshine_page(
                "fees", day, refs, [fee_row(r) for r in due], pages + 1)
            if error:
                return {"pushed": pushed, "pages": pages, "failed": len(due), "error": error}
            pushed, pages = pushed + len(due), pages + 1

    async def sunshine_institutions(self, day: date) -> dict[str, Any]:
        """The day's 机构 table: core's 定点医疗机构 (H4004), each once a day, in pages."""
        if self.partners is None:
            return {"pushed": 0, "pages": 0, "failed": 0,
                    "error": "this hub has no F7 partner client"}
        key = day.strftime("%Y%m%d")
        try:
            listed = await self._core().institutions()
        except HubError as exc:
            error = f"{exc.public_code}: {exc.public_text}"
            log.error("ALERT 提醒预警: F7 阳光惠民 机构 table of %s: core's list failed: %s",
                      day, mask_text(error))
            return {"pushed": 0, "pages": 0, "failed": 0, "error": error}
        done = await self.store.sunshine_pushed("institutions", key)
        due = sorted({i.code: i for i in listed if i.code not in done}.values(),
                     key=lambda i: i.code)
        pushed = pages = 0
        for n in range(0, len(due), SUNSHINE_PAGE):
            chunk = due[n:n + SUNSHINE_PAGE]
            error = await self._sunshine_page("institutions", day, [i.code for i in chunk],
                                              [i.as_row() for i in chunk], pages + 1)
            if error:
                return {"pushed": pushed, "pages": pages, "failed": len(chunk),
                        "error": error}
            pushed, pages = pushed + len(chunk), pages + 1
        return {"pushed": pushed, "pages": pages, "failed": 0, "error": ""}

    async def _sunshine_page(self, table: str, day: date, refs: list[str],
                             rows: list[dict[str, Any]], page: int) -> str:
        """One page of ``table``; the log lines of its rows; the error ("" when pushed)."""
        assert self.partners is not None
        key = day.strftime("%Y%m%d")
        try:
            await self.partners.push_sunshine(
                {"day": day.isoformat(), "page": page, "rows": rows},
                serial=page_serial(f"sunshine-{table}", key, refs),
                table="fees" if table == "fees" else "institutions")
        except HubError as exc:
            error = f"{exc.public_code}: {exc.public_text}"
            log.error("ALERT 提醒预警: F7 阳光惠民 %s table of %s failed (%d rows): %s",
                      table, day, len(rows), mask_text(error))
            await self.store.log_sunshine(table, key, refs, ok=False, reason=error)
            return error
        await self.store.log_sunshine(table, key, refs, ok=True)
        return ""
