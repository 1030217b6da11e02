"""F7 困难人员: the three ways in, 比对, the two-step review and the caseworker's choices.

Seed 003 lines 1507-1532 (departments, processing, status back), 1487 (several
identities), 1802-1806 (the record layout). Every way in ends in ``receive``:

    a department's system    ``POST /partners/departments/{dept}/lists`` (signed)
    a batch file             ``import_file``: CSV/XLSX, UTF-8 or GBK, the reader of the
                             student batches (``jobs.student_batch.read_table``)
    a caseworker's entry     ``enter``: one record

``receive`` checks each row (``contracts.difficulty.check_list``: bad rows refused
with row, field and reason, good rows kept), compares the good ones with what the
hub holds and stores the list in one transaction (``storage.difficulty``). What 比对
finds unchanged is answered ``synced`` at once; a removal of nothing held is refused
with the reason; everything else waits for 初审 then 复核 (``review``: another
caseworker account). On 复核 the record changes what the hub holds and goes to the
platform and to core on their lanes (``routes.difficulty``); a treatment identity
ending while others remain opens a case the caseworker decides (``choose``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

from adapters.core.port import AssistanceCorePort
from adapters.difficulty.port import DifficultyPort
from contracts.clock import today_beijing
from contracts.difficulty import (
    COLUMNS,
    DEPARTMENTS,
    MAX_LIST_ROWS,
    RowRefusal,
    check_list,
    core_message,
    identity_label,
    platform_message,
    status_message,
)
from contracts.envelope import canonical_json
from contracts.errors import HubError, ValidationFailed
from contracts.masking import mask_id, mask_name, mask_text
from contracts.student_batch import cell_text, match_headers
from jobs.student_batch import read_table
from kernel.deps import Publisher
from routes.difficulty import (
    DifficultyDeps,
    platform_payload,
    status_payload,
    sync_payload,
)
from services.assistance import AssistanceDesk
from services.audit import Actor, Audit, Caller
from services.deps import Deps
from storage.assistance import AssistanceStore
from storage.difficulty import DifficultyStore, NewList, masked

__all__ = ["MAX_TITLE_ROWS", "REQUIRED_COLUMNS", "SCHEDULER", "SUNSHINE_CHECK_S",
           "SUNSHINE_PAGE", "DifficultyDesk", "ReviewResult", "sunshine_row"]

log = logging.getLogger("hub.difficulty")

REQUIRED_COLUMNS: Final = ("change", "identity", "id_number", "name", "start_date")
MAX_TITLE_ROWS: Final = 5
"""Rows above the header with no known column (a title) that a file may start with."""
Channel = Literal["api", "file", "entry"]
_FINAL: Final = {"synced": "synced", "unchanged": "synced", "sync_failed": "refused",
                 "rejected": "refused"}
"""A record's status -> what its department hears of it on a 补发 (the others wait)."""
SUNSHINE_PAGE: Final = 200
"""Rows of the 救助人员 table in one push to 阳光惠民."""
SUNSHINE_CHECK_S: Final = 3600.0
"""How often the hub's ticker runs today's 阳光惠民 push (a run that finds everything
pushed today pushes nothing)."""
SCHEDULER: Final = Caller("scheduler", "system")
"""The actor of the scheduled 阳光惠民 run in the audit log."""


@dataclass(frozen=True)
class ReviewResult:
    record_id: str
    outcome: str
    status: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "outcome": self.outcome, "status": self.status,
                "detail": self.detail}


def _refusals(refused: Sequence[RowRefusal]) -> list[dict[str, Any]]:
    return [{"row": r.row, "field": r.field, "reason": mask_text(r.reason)} for r in refused]


@dataclass(frozen=True)
class DifficultyDesk:
    store: DifficultyStore
    publisher: Publisher
    audit: Audit | None = None
    partners: DifficultyPort | None = None
    """The F7 partners' client: 阳光惠民's push is called from here, not a lane (a day's
    table, paged; the 同步日志 is its progress)."""
    core: AssistanceCorePort | None = None
    """Core's 定点医疗机构 list (H4004) for 阳光惠民's 机构 table (``services.assistance``)."""

    # ------------------------------------------------------------ ways in

    async def receive(self, department: str, month: str, rows: Sequence[Mapping[str, object]],
                      *, channel: Channel, list_ref: str, actor: str,
                      row_numbers: Sequence[int] | None = None) -> dict[str, Any]:
        """Check, compare and store one list; the receipt (masked). ``accepted`` False
        when the whole list is refused (unknown department or month)."""
        check = check_list(department, month, rows, row_numbers=row_numbers)
        if any(r.row == 0 for r in check.refused):
            return {"accepted": False, "department": department, "month": month,
                    "refused": _refusals(check.refused)}
        lst = NewList(department, month, channel, list_ref, actor, len(rows), check.good,
                      check.refused)
        row, records, created = await self.store.receive(lst)
        if created:
            for rec in records:
                if rec["department"] not in DEPARTMENTS:
                    continue
                if rec["status"] == "unchanged":
                    await self.publisher.publish(status_message(rec["department"], status_payload(
                        rec, list_ref, "synced", "比对: already held, unchanged")))
                elif rec["status"] == "rejected":
                    await self.publisher.publish(status_message(rec["department"], status_payload(
                        rec, list_ref, "refused", rec["reason"])))
        counts: dict[str, int] = {}
        for rec in records:
            counts[rec["comparison"]] = counts.get(rec["comparison"], 0) + 1
        return {"accepted": True, "duplicate": not created, "list_id": row["id"],
                "department": department, "month": month, "channel": row["channel"],
                "rows": row["rows"], "kept": row["accepted"], "refused_rows": row["refused"],
                "refused": masked({"refusals": row["refusals"]})["refusals"],
                "comparison": counts,
                "records": [{"row": r["row_no"], "record_id": r["id"], "status": r["status"],
                             "comparison": r["comparison"]} for r in records]}

    async def import_file(self, department: str, month: str, filename: str, raw: bytes,
                          actor: str) -> dict[str, Any]:
        """A department's list as a CSV/XLSX file (UTF-8 or GBK, detected): header row by
        the Chinese columns of ``contracts.difficulty.COLUMNS``, then one record a row. A
        file that cannot be read or lacks a column is refused whole (row 0, 文件/表头)."""
        suffix = Path(filename).suffix.lower() or ".csv"
        if suffix not in (".csv", ".txt", ".xlsx", ".xlsm", ".xls"):
            return {"accepted": False, "department": department, "month": month,
                    "refused": [{"row": 0, "field": "文件",
                                 "reason": f"{suffix} is not CSV or XLSX"}]}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"list{suffix}"
            path.write_bytes(raw)
            try:
                rows, numbers = _read(path, raw)
            except ValidationFailed as exc:
                return {"accepted": False, "department": department, "month": month,
                        "refused": [{"row": 0, "field": f, "reason": r} for f, r in exc.errors]}
        if len(rows) > MAX_LIST_ROWS:  # the file reader allows more than a list may hold
            return {"accepted": False, "department": department, "month": month,
                    "refused": [{"row": 0, "field": "文件", "reason":
                                 f"{len(rows)} rows: a list holds at most {MAX_LIST_ROWS}; "
                                 "split the file"}]}
        ref = "file-" + hashlib.sha256(raw).hexdigest()[:24]
        return await self.receive(department, month, rows, channel="file", list_ref=ref,
                                  actor=actor, row_numbers=numbers)

    async def enter(self, department: str, month: str, record: Mapping[str, object],
                    actor: str) -> dict[str, Any]:
        """A caseworker's single record (登记/维护/注销 of 1804): a list of one."""
        ref = "entry-" + hashlib.sha256(canonical_json(
            {"d": department, "m": month, "r": dict(record)}).encode()).hexdigest()[:24]
        return await self.receive(department, month, [record], channel="entry", list_ref=ref,
                                  actor=actor)

    # ------------------------------------------------------------ review

    async def pending(self, step: Literal["first", "second"], *, limit: int = 100,
                      offset: int = 0) -> dict[str, Any]:
        status = "first_review" if step == "first" else "second_review"
        rows = await self.store.records(status=status, limit=limit, offset=offset)
        return {"step": step, "counts": await self.store.counts(),
                "records": [masked(r) for r in rows]}

    async def review(self, record_ids: Sequence[str], *, approve: bool, reason: str,
                     actor: Actor) -> list[ReviewResult]:
        """初审 or 复核 of each record, by where it stands; 复核 by the 初审 account is
        refused (``same_reviewer``). Approved at 复核: to the platform and core."""
        out = []
        for rid in record_ids:
            rec = await self.store.record(rid)
            if rec is None:
                out.append(ReviewResult(rid, "not_found"))
                continue
            if rec["status"] not in ("first_review", "second_review"):
                out.append(ReviewResult(rid, "conflict", rec["status"],
                                        "not waiting for review"))
                continue
            step: Literal["first", "second"] = \
                "first" if rec["status"] == "first_review" else "second"
            rv = await self.store.review(rid, step=step, user=actor.user, approve=approve,
                                         reason=reason)
            if rv.outcome != "ok" or rv.record is None:
                detail = "复核 must be by another caseworker than 初审" \
                    if rv.outcome == "same_reviewer" else ""
                out.append(ReviewResult(rid, rv.outcome, rv.record["status"] if rv.record
                                        else "", detail))
                continue
            lst = await self.store.get_list(rv.record["list_id"])
            list_ref = str(lst["list_ref"]) if lst else ""
            if rv.record["status"] == "rejected" and rv.record["department"] in DEPARTMENTS:
                await self.publisher.publish(status_message(rv.record["department"],
                                                            status_payload(
                    rv.record, list_ref, "refused", f"审核未通过: {reason}")))
            elif rv.record["status"] == "approved":
                await self.publisher.publish(platform_message(platform_payload(rv.record,
                                                                               list_ref)))
                await self.publisher.publish(core_message(sync_payload(
                    rv.record, list_ref, primary=rv.primary)))
            out.append(ReviewResult(rid, "ok", rv.record["status"],
                                    f"choice case {rv.case['id']}" if rv.case else ""))
            if self.audit is not None:
                await self.audit.record(actor.user, actor.role, f"difficulty_review_{step}",
                                        rid, {"approve": approve,
                                              "reason": mask_text(reason)[:200]}, "ok")
        return out

    # ------------------------------------------------------------ 补发 (issue 11)

    async def resend(self, department: str, month: str, *, id_number: str | None,
                     reason: str, actor: Actor, resend_id: str | None = None
                     ) -> dict[str, Any]:
        """补发 of the 救助待遇标识同步情况 of a department's month (or of one person in
        it) on the department's lane. Each record in a final state is sent again with
        its status now (synced / refused and why); records still in review are skipped.
        The messages are salted with ``resend_id``: a new 补发 is a new delivery, the same
        ``resend_id`` again (a client's retry) the same one. Audited."""
        resend_id = resend_id or uuid.uuid4().hex
        rows = await self.store.records_of_month(department, month, id_number=id_number)
        sent, skipped = [], []
        for rec in rows:
            status = _FINAL.get(rec["status"])
            if status is None:
                skipped.append({"record_id": rec["id"], "status": rec["status"]})
                continue
            why = "比对: already held, unchanged" if rec["status"] == "unchanged" \
                else str(rec["reason"] or "")
            payload = status_payload(rec, str(rec["list_ref"]), status, why) | {
                "resend_id": resend_id}
            await self.publisher.publish(status_message(department, payload,
                                                        salt=f"resend:{resend_id}"))
            sent.append({"record_id": rec["id"], "status": status})
        target = f"{department}/{month}" + (f"/{mask_id(id_number)}" if id_number else "")
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, "difficulty.resend", target,
                                    {"reason": mask_text(reason)[:200], "resend_id": resend_id,
                                     "sent": len(sent), "skipped": len(skipped)}, "accepted")
        return {"resend_id": resend_id, "department": department, "month": month,
                "found": len(rows), "sent": sent, "skipped": skipped}

    # ------------------------------------------------------------ 人员认定 (1497)

    async def person(self, id_number: str) -> dict[str, Any]:
        """人员认定 for the 医疗救助平台: whether the hub recognises the person as a
        困难人员 (an identity in force), which identities (in force and ended, the one
        carrying the treatment marked) and since when. The platform asked with the ID
        number, so it is answered masked; the name masked, no phone (no need)."""
        held = await self.store.held(id_number)
        active = [h for h in held if h["active"]]
        identities = [{"identity": h["identity"], "label": identity_label(h["identity"]),
                       "department": h["department"], "start_date": _day(h["start_date"]),
                       "end_date": _day(h["end_date"]), "active": bool(h["active"]),
                       "primary": bool(h["is_primary"])} for h in held]
        return {"id_number": mask_id(id_number), "recognised": bool(active),
                "name": mask_name(str(held[0]["name"])) if held else "",
                "since": _day(min(h["start_date"] for h in active)) if active else None,
                "identities": identities}

    # ------------------------------------------------------------ 阳光惠民 (1497)

    async def run_sunshine(self, actor: Actor, *, day: date | None = None) -> dict[str, Any]:
        """The day's push of the 救助人员 table (identities in force) to 阳光惠民, in pages
        of ``SUNSHINE_PAGE``: each row the day has not pushed yet (``sunshine_due``), so a
        second run the same day pushes nothing new and a run stopped by a failure pushes
        the rest next time. A page's serial is derived from the day and its rows: pushed
        twice (two runs at once), 阳光惠民 drops the repeat. A failed page is an alert and
        a failed 同步日志 line per row; that table stops there. Then the 救助费用 and 机构
        tables, by the same rules (``_sunshine_tables``); ``tables`` has each one's
        counts, ``complete`` is all three done. Audited."""
        when = day or today_beijing()
        key = when.strftime("%Y%m%d")
        pushed = pages = failed = 0
        error = ""
        while True:
            due = await self.store.sunshine_due(key, limit=SUNSHINE_PAGE)
            if not due:
                break
            if self.partners is None:
                error = "this hub has no F7 partner client"
                break
            rows = [sunshine_row(h) for h in due]
            serial = hashlib.sha256(f"sunshine:{key}:".encode() + ",".join(
                str(r["ref"]) for r in rows).encode()).hexdigest()[:32]
            try:
                await self.partners.push_sunshine({"day": when.isoformat(), "page": pages + 1,
                                                   "rows": rows}, serial=serial)
            except HubError as exc:
                error = f"{exc.public_code}: {exc.public_text}"
                log.error("ALERT 提醒预警: F7 阳光惠民 push of %s failed (%d rows): %s",
                          when, len(rows), mask_text(error))
                await self.store.log_sunshine(key, due, ok=False, reason=error)
                failed = len(rows)
                break
            await self.store.log_sunshine(key, due, ok=True)
            pushed, pages = pushed + len(rows), pages + 1
        tables: dict[str, Any] = {"recipients": {"pushed": pushed, "pages": pages,
                                                 "failed": failed, "error": error}}
        tables |= await self._sunshine_tables(when)
        errors = [t["error"] for t in tables.values() if t.get("error")]
        out = {"day": when.isoformat(), "pushed": pushed, "pages": pages, "failed": failed,
               "error": error or (errors[0] if errors else ""), "complete": not errors,
               "tables": tables}
        if self.audit is not None and (any(t.get("pushed") or t.get("failed")
                                           for t in tables.values())
                                       or errors or actor is not SCHEDULER):
            await self.audit.record(actor.user, actor.role, "difficulty.sunshine",
                                    when.isoformat(), out, "failed" if error else "ok")
        return out

    async def _sunshine_tables(self, day: date) -> dict[str, Any]:
        """阳光惠民's 救助费用 and 机构 tables of the day (``services.assistance``): each row
        once a day, paged like the 救助人员 table; the 机构 table needs core's list
        (``core``), without it that table is skipped (said in the answer)."""
        desk = AssistanceDesk(store=AssistanceStore(self.store.engine), core=self.core,
                              publisher=self.publisher, partners=self.partners)
        out: dict[str, Any] = {"fees": await desk.sunshine_fees(day)}
        out["institutions"] = await desk.sunshine_institutions(day) if self.core is not None \
            else {"pushed": 0, "pages": 0, "failed": 0, "error": "",
                  "skipped": "no core port given to this desk (H4004)"}
        return out

    async def sunshine_tick(self) -> None:
        """The scheduled run (the hub's ticker, every ``SUNSHINE_CHECK_S``): today's push."""
        await self.run_sunshine(SCHEDULER)

    # ------------------------------------------------------------ choices (1487)

    async def cases(self, *, status: str | None = "open") -> list[dict[str, Any]]:
        return [masked(c) for c in await self.store.cases(status=status)]

    async def choose(self, case_id: str, identity: str, actor: Actor
                     ) -> tuple[str, dict[str, Any] | None]:
        """The caseworker's choice: ``identity`` now carries the treatment; core hears a
        进入 of it with the treatment flag (one fact per case)."""
        outcome, case, held = await self.store.choose(case_id, identity, actor.user)
        if outcome == "ok" and case is not None and held is not None:
            rec = {"id": case["record_id"], "row_no": 0, "department": held["department"],
                   "change": "add", "identity": identity, "id_number": held["id_number"],
                   "name": held["name"], "start_date": held["start_date"],
                   "end_date": held["end_date"]}
            await self.publisher.publish(core_message(
                sync_payload(rec, "", primary=True, case_id=case_id), salt=case_id))
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, "difficulty_choose", case_id,
                                    {"identity": identity}, outcome)
        return outcome, masked(case) if case else None

    async def sync_log(self, *, status: str | None = None,
                       limit: int = 100) -> list[dict[str, Any]]:
        return [masked(r) for r in await self.store.sync_log(status=status, limit=limit)]

    async def record(self, record_id: str) -> dict[str, Any] | None:
        rec = await self.store.record(record_id)
        return masked(rec) if rec else None


def sunshine_row(held: dict[str, Any]) -> dict[str, Any]:
    """A row of the 救助人员 table for 阳光惠民, a public 惠民 platform: ID number and name
    masked (it shows who is helped, it does not identify them), ``ref`` the hub's record
    that put the identity in force (a stable, non-personal row key), no phone."""
    return {"ref": held["record_id"], "id_number": mask_id(str(held["id_number"])),
            "name": mask_name(str(held["name"])), "identity": held["identity"],
            "label": identity_label(held["identity"]),
            "department": DEPARTMENTS.get(held["department"], "医保局"),
            "start_date": _day(held["start_date"]), "end_date": _day(held["end_date"]),
            "primary": bool(held["is_primary"])}


def _day(value: object) -> str | None:
    return value.isoformat() if isinstance(value, date) else None


def _read(path: Path, raw: bytes) -> tuple[list[dict[str, object]], list[int]]:
    """The file's records by field, with their row numbers (the header is found first;
    blank rows skipped)."""
    rows: list[dict[str, object]] = []
    numbers: list[int] = []
    header = None
    with contextlib.closing(read_table(path, raw)) as table:
        for row_no, cells in table:
            if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                continue
            if header is None:
                if row_no <= MAX_TITLE_ROWS and not any(
                        cell_text(c).strip("*＊ ") in COLUMNS for c in cells):
                    continue  # a title row above the header (常见: 某某局困难人员名单)
                header = match_headers("difficulty", COLUMNS, REQUIRED_COLUMNS, cells)
                continue
            values = header.values(cells)
            rows.append({k: v for k, v in values.items() if v not in (None, "")})
            numbers.append(row_no)
    if header is None:
        raise ValidationFailed([("文件", "文件为空：没有表头行")])
    if not rows:
        raise ValidationFailed([("文件", "没有数据行")])
    return rows, numbers


def _satisfies(d: Deps) -> DifficultyDeps:
    """Never called: mypy checks that the hub's ``Deps`` satisfies the F7 lanes."""
    return d
