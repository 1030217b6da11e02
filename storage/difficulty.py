"""F7 困难人员: lists received, their records through review, what the hub holds, the
同步日志 and the caseworker's choice cases. Alembic revision 0008 creates the tables.

    difficulty_lists       one row per list (department, month, way in, counts, refusals)
    difficulty_records     one row per good record: 比对 result and where it stands
    difficulty_identities  the identities the hub holds per person (several at once, 1487)
    difficulty_sync_log    同步日志: every push to core / the platform, ok or failed (1482)
    difficulty_cases       a treatment identity ended while others remain: the caseworker
                           chooses which one carries the treatment (1487)

A record's status::

    first_review   waits for 初审
    second_review  初审 passed; waits for 复核 by another caseworker
    approved       复核 passed: held identities updated, pushed to the platform and core
    synced         core took the 进入/退出 (the department hears "synced")
    sync_failed    core refused it or it was dead-lettered (an alert; the department hears
                   "refused" with the reason)
    rejected       a reviewer refused it, or 比对 found a conflict (the department hears it)
    unchanged      the hub already holds exactly this (the department hears "synced")

Receiving a list is one transaction (``receive``): nothing is half-applied, and a
department sending the same list again (its ``list_ref``) gets the first receipt.
Review steps are compare-and-set on the status, so two caseworkers cannot both pass
the same step, and 复核 must be by another account than 初审 (``review``).
Personal data is masked in every answer (``masked``). Plain types: SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.difficulty import DifficultyRecord, RowRefusal
from contracts.masking import mask_id, mask_name, mask_phone, mask_text
from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["RECORD_STATUSES", "Comparison", "DifficultyStore", "NewList", "Reviewed",
           "compare", "list_id_for", "masked", "record_id_for"]

RECORD_STATUSES: Final = ("first_review", "second_review", "approved", "synced", "sync_failed",
                          "rejected", "unchanged")
Comparison = Literal["new", "changed", "ended", "unchanged", "conflict"]


def list_id_for(department: str, list_ref: str) -> str:
    return hashlib.sha256(f"difficulty-list:{department}:{list_ref}".encode()).hexdigest()[:32]


def record_id_for(list_id: str, row: int) -> str:
    return hashlib.sha256(f"difficulty-record:{list_id}:{row}".encode()).hexdigest()[:32]


class DifficultyListRow(Base):
    __tablename__ = "difficulty_lists"
    __table_args__ = (UniqueConstraint("department", "list_ref"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department: Mapped[str] = mapped_column(String(20))
    month: Mapped[str] = mapped_column(String(7))
    channel: Mapped[str] = mapped_column(String(8))
    list_ref: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    refusals: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DifficultyRecordRow(Base):
    __tablename__ = "difficulty_records"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    list_id: Mapped[str] = mapped_column(String(32), index=True)
    row_no: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(20))
    change: Mapped[str] = mapped_column(String(8))
    identity: Mapped[str] = mapped_column(String(2))
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(60))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    phone: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(1))
    remark: Mapped[str] = mapped_column(Text)
    comparison: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(16), index=True)
    first_reviewer: Mapped[str] = mapped_column(String(64))
    second_reviewer: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    platform_status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DifficultyIdentityRow(Base):
    __tablename__ = "difficulty_identities"

    id_number: Mapped[str] = mapped_column(String(18), primary_key=True)
    identity: Mapped[str] = mapped_column(String(2), primary_key=True)
    department: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean)
    is_primary: Mapped[bool] = mapped_column(Boolean)
    record_id: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DifficultySyncLogRow(Base):
    __tablename__ = "difficulty_sync_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(12))
    action: Mapped[str] = mapped_column(String(8))
    id_number: Mapped[str] = mapped_column(String(18))
    identity: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(8), index=True)
    alert: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DifficultyCaseRow(Base):
    __tablename__ = "difficulty_cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(32))
    id_number: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(60))
    ended_identity: Mapped[str] = mapped_column(String(2))
    options: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), index=True)
    chosen: Mapped[str] = mapped_column(String(2))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def compare(rec: DifficultyRecord, department: str, held: dict[str, Any] | None) -> Comparison:
    """比对 of one record with what the hub holds for that person and identity.

    add, not held (or held but ended)            new
    add, held active, same department and dates  unchanged
    add, held active from another department     conflict (two departments claim it)
    add, held active, other dates                changed
    remove, held active                          ended
    remove, not held or already ended            conflict (nothing to end)
    """
    active = held is not None and bool(held["active"])
    if rec.change == "remove":
        return "ended" if active else "conflict"
    if not active or held is None:
        return "new"
    if held["department"] != department:
        return "conflict"
    if held["start_date"] == rec.start_date and held["end_date"] == rec.end_date:
        return "unchanged"
    return "changed"


@dataclass(frozen=True)
class NewList:
    department: str
    month: str
    channel: Literal["api", "file", "entry"]
    list_ref: str
    actor: str
    rows: int
    good: list[tuple[int, DifficultyRecord]]
    refused: list[RowRefusal]

    @property
    def id(self) -> str:
        return list_id_for(self.department, self.list_ref)


@dataclass(frozen=True)
class Reviewed:
    """``outcome`` ok / not_found / conflict (not at that step, or changed meanwhile) /
    same_reviewer (复核 by the 初审 account); ``record`` after the step (unmasked)."""

    outcome: Literal["ok", "not_found", "conflict", "same_reviewer"]
    record: dict[str, Any] | None = None
    case: dict[str, Any] | None = None
    primary: bool = False
    """Whether the identity carries the person's treatment (core's ``primary``)."""


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    for k in ("created_at", "updated_at", "received_at", "at", "closed_at"):
        if k in d:
            d[k] = as_utc(d[k])
    return d


def masked(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API answers it: ID numbers, names, phones masked; JSON-ready."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k == "id_number":
            v = mask_id(str(v))
        elif k == "name":
            v = mask_name(str(v))
        elif k == "phone":
            v = mask_phone(str(v)) if v else ""
        elif k in ("reason", "refusals") and isinstance(v, str):
            v = mask_text(v)
        if isinstance(v, (date, datetime)):
            v = v.isoformat()
        out[k] = v
    if isinstance(out.get("options"), str):
        out["options"] = json.loads(out["options"])
    if isinstance(out.get("refusals"), str):
        out["refusals"] = json.loads(out["refusals"])
    return out


class DifficultyStore:
    """Async store of F7 on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # ------------------------------------------------------------ lists

    async def receive(self, lst: NewList) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
        """Store a checked list and its good records, compared with what the hub holds, in
        one transaction: ``(list row, record rows, True)``; a list already received (same
        department and ``list_ref``) gives ``(its row, its records, False)``."""
        now = utc_now()
        async with self.engine.begin() as conn:
            existing = await self._list(conn, lst.id)
            if existing is not None:
                return existing, await self._records_of(conn, lst.id), False
            row = {"id": lst.id, "department": lst.department, "month": lst.month,
                   "channel": lst.channel, "list_ref": lst.list_ref[:64], "actor": lst.actor[:64],
                   "rows": lst.rows, "accepted": len(lst.good), "refused": len(
                       {r.row for r in lst.refused}),
                   "refusals": mask_text(json.dumps([r.as_dict() for r in lst.refused],
                                                    ensure_ascii=False)),
                   "received_at": now}
            await conn.execute(insert(DifficultyListRow).values(row))
            records = []
            for row_no, rec in lst.good:
                held = await self._held(conn, rec.id_number, rec.identity)
                comparison = compare(rec, lst.department, held)
                status = {"unchanged": "unchanged"}.get(comparison, "first_review")
                reason = ""
                if comparison == "conflict":
                    if rec.change == "remove":
                        status, reason = "rejected", "比对: the hub holds no such identity " \
                                                     "in force to end"
                    else:
                        reason = "比对: the identity is held from another department"
                records.append({
                    "id": record_id_for(lst.id, row_no), "list_id": lst.id, "row_no": row_no,
                    "department": lst.department, "change": rec.change,
                    "identity": rec.identity, "id_number": rec.id_number, "name": rec.name,
                    "start_date": rec.start_date, "end_date": rec.end_date, "phone": rec.phone,
                    "source": rec.source, "remark": rec.remark, "comparison": comparison,
                    "status": status, "first_reviewer": "", "second_reviewer": "",
                    "reason": reason, "platform_status": "", "created_at": now,
                    "updated_at": now})
            if records:
                await conn.execute(insert(DifficultyRecordRow), records)
        return _row(row), records, True

    async def _list(self, conn: AsyncConnection, list_id: str) -> dict[str, Any] | None:
        r = (await conn.execute(select(DifficultyListRow.__table__).where(
            DifficultyListRow.id == list_id))).mappings().first()
        return _row(r) if r else None

    async def _records_of(self, conn: AsyncConnection, list_id: str) -> list[dict[str, Any]]:
        rows = (await conn.execute(select(DifficultyRecordRow.__table__).where(
            DifficultyRecordRow.list_id == list_id).order_by(DifficultyRecordRow.row_no))
        ).mappings().all()
        return [_row(r) for r in rows]

    async def _held(self, conn: AsyncConnection, id_number: str,
                    identity: str) -> dict[str, Any] | None:
        r = (await conn.execute(select(DifficultyIdentityRow.__table__).where(
            DifficultyIdentityRow.id_number == id_number,
            DifficultyIdentityRow.identity == identity))).mappings().first()
        return dict(r) if r else None

    async def get_list(self, list_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            return await self._list(conn, list_id)

    # ------------------------------------------------------------ records and review

    async def record(self, record_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(DifficultyRecordRow.__table__).where(
                DifficultyRecordRow.id == record_id))).mappings().first()
        return _row(r) if r else None

    async def records(self, *, status: str | None = None, department: str | None = None,
                      limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        q = select(DifficultyRecordRow.__table__).order_by(DifficultyRecordRow.created_at,
                                                           DifficultyRecordRow.list_id,
                                                           DifficultyRecordRow.row_no)
        if status is not None:
            q = q.where(DifficultyRecordRow.status == status)
        if department is not None:
            q = q.where(DifficultyRecordRow.department == department)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_row(r) for r in rows]

    async def records_of_month(self, department: str, month: str, *,
                               id_number: str | None = None,
                               limit: int = 20_000) -> list[dict[str, Any]]:
        """A department's records of a month (the lists it sent for ``month``), each with
        its list's ``list_ref``; only ``id_number``'s when given (补发)."""
        r, lst = DifficultyRecordRow, DifficultyListRow
        q = (select(r.__table__, lst.list_ref).join(lst, lst.id == r.list_id)
             .where(r.department == department, lst.month == month)
             .order_by(lst.received_at, r.list_id, r.row_no).limit(limit))
        if id_number is not None:
            q = q.where(r.id_number == id_number)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_row(x) for x in rows]

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(DifficultyRecordRow.status, func.count())
                                       .group_by(DifficultyRecordRow.status))).all()
        return {s: 0 for s in RECORD_STATUSES} | {str(s): int(n) for s, n in rows}

    async def review(self, record_id: str, *, step: Literal["first", "second"], user: str,
                     approve: bool, reason: str = "") -> Reviewed:
        """One review step as compare-and-set. 复核 (second) must be by another user than
        初审; approving it applies the record to the held identities in the same
        transaction (``_apply``) and may open a choice case (1487)."""
        expect = "first_review" if step == "first" else "second_review"
        now = utc_now()
        async with self.engine.begin() as conn:
            r = (await conn.execute(select(DifficultyRecordRow.__table__).where(
                DifficultyRecordRow.id == record_id))).mappings().first()
            if r is None:
                return Reviewed("not_found")
            rec = _row(r)
            if rec["status"] != expect:
                return Reviewed("conflict", rec)
            if step == "second" and rec["first_reviewer"] == user[:64]:
                return Reviewed("same_reviewer", rec)
            values: dict[str, Any] = {"updated_at": now}
            values["first_reviewer" if step == "first" else "second_reviewer"] = user[:64]
            if not approve:
                values |= {"status": "rejected", "reason": mask_text(reason or "rejected")}
            else:
                values["status"] = "second_review" if step == "first" else "approved"
            done = await conn.execute(update(DifficultyRecordRow).where(
                DifficultyRecordRow.id == record_id,
                DifficultyRecordRow.status == expect).values(**values))
            if not done.rowcount:
                return Reviewed("conflict", rec)
            rec |= values
            if not approve or step == "first":
                return Reviewed("ok", rec)
            primary, case = await self._apply(conn, rec, now)
        return Reviewed("ok", rec, case, primary)

    async def _apply(self, conn: AsyncConnection, rec: dict[str, Any],
                     now: datetime) -> tuple[bool, dict[str, Any] | None]:
        """The approved record changes what the hub holds. ``(primary, case)``: whether the
        identity carries the person's treatment, and the choice case opened when the
        treatment identity ended while others remain (1487)."""
        t = DifficultyIdentityRow
        held = await self._held(conn, rec["id_number"], rec["identity"])
        others = (await conn.execute(select(t.identity, t.is_primary).where(
            t.id_number == rec["id_number"], t.identity != rec["identity"],
            t.active.is_(True)))).all()
        if rec["change"] == "add":
            primary = not any(p for _, p in others) if held is None or not held["is_primary"] \
                else True
            values = {"department": rec["department"], "name": rec["name"],
                      "start_date": rec["start_date"], "end_date": rec["end_date"],
                      "active": True, "is_primary": primary, "record_id": rec["id"],
                      "updated_at": now}
            if held is None:
                await conn.execute(insert(t).values(id_number=rec["id_number"],
                                                    identity=rec["identity"], **values))
            else:
                await conn.execute(update(t).where(
                    t.id_number == rec["id_number"], t.identity == rec["identity"]
                ).values(**values))
            return primary, None
        was_primary = bool(held and held["is_primary"])
        await conn.execute(update(t).where(
            t.id_number == rec["id_number"], t.identity == rec["identity"]).values(
            active=False, is_primary=False, end_date=rec["end_date"], record_id=rec["id"],
            updated_at=now))
        if not was_primary or not others:
            return was_primary, None
        case = {"id": hashlib.sha256(f"difficulty-case:{rec['id']}".encode()).hexdigest()[:32],
                "record_id": rec["id"], "id_number": rec["id_number"], "name": rec["name"],
                "ended_identity": rec["identity"],
                "options": json.dumps(sorted(i for i, _ in others)), "status": "open",
                "chosen": "", "actor": "", "created_at": now, "closed_at": None}
        await conn.execute(insert(DifficultyCaseRow).values(case))
        return was_primary, _row(case)

    async def set_status(self, record_id: str, status: str, *, expect: tuple[str, ...],
                         reason: str | None = None) -> bool:
        values: dict[str, Any] = {"status": status, "updated_at": utc_now()}
        if reason is not None:
            values["reason"] = mask_text(reason)
        async with self.engine.begin() as conn:
            done = await conn.execute(update(DifficultyRecordRow).where(
                DifficultyRecordRow.id == record_id,
                DifficultyRecordRow.status.in_(expect)).values(**values))
        return bool(done.rowcount)

    async def set_platform(self, record_id: str, status: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(DifficultyRecordRow).where(
                DifficultyRecordRow.id == record_id).values(platform_status=status[:12],
                                                             updated_at=utc_now()))

    # ------------------------------------------------------------ held identities

    async def held(self, id_number: str) -> list[dict[str, Any]]:
        """The identities the hub holds for a person (in force and ended)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(DifficultyIdentityRow.__table__).where(
                DifficultyIdentityRow.id_number == id_number).order_by(
                DifficultyIdentityRow.identity))).mappings().all()
        return [_row(r) for r in rows]

    async def held_active(self, id_numbers: list[str]) -> dict[str, list[str]]:
        """ID number -> the identities in force the hub holds (the 困难人员库 answer of
        the student batch, 1816); persons holding none are left out."""
        out: dict[str, list[str]] = {}
        t = DifficultyIdentityRow
        async with self.engine.connect() as conn:
            for i in range(0, len(id_numbers), 500):
                rows = (await conn.execute(select(t.id_number, t.identity).where(
                    t.id_number.in_(id_numbers[i:i + 500]), t.active.is_(True)).order_by(
                    t.id_number, t.is_primary.desc(), t.identity))).all()
                for idn, identity in rows:
                    out.setdefault(str(idn), []).append(str(identity))
        return out

    # ------------------------------------------------------------ 阳光惠民 (1497)

    async def sunshine_due(self, day: str, *, limit: int = 500) -> list[dict[str, Any]]:
        """The 救助人员 table (identities in force) not yet pushed to 阳光惠民 on ``day``
        (``yyyyMMdd``): the rows without an ``ok`` 同步日志 line of target ``sunshine``
        and action ``day``. A day's second run finds nothing it pushed already."""
        t, lg = DifficultyIdentityRow, DifficultySyncLogRow
        pushed = select(lg.id).where(lg.target == "sunshine", lg.action == day[:8],
                                     lg.status == "ok", lg.id_number == t.id_number,
                                     lg.identity == t.identity).exists()
        q = (select(t.__table__).where(t.active.is_(True), ~pushed)
             .order_by(t.id_number, t.identity).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_row(r) for r in rows]

    async def log_sunshine(self, day: str, rows: list[dict[str, Any]], *, ok: bool,
                           reason: str = "") -> None:
        """The 同步日志 lines of a page pushed to 阳光惠民 (or failed: alerts), one
        transaction."""
        if not rows:
            return
        now = utc_now()
        async with self.engine.begin() as conn:
            await conn.execute(insert(DifficultySyncLogRow), [
                {"record_id": str(r["record_id"])[:32], "target": "sunshine",
                 "action": day[:8], "id_number": str(r["id_number"])[:18],
                 "identity": str(r["identity"])[:2], "status": "ok" if ok else "failed",
                 "alert": not ok, "reason": mask_text(reason), "at": now} for r in rows])

    # ------------------------------------------------------------ 同步日志

    async def log_sync(self, record_id: str, *, target: str, action: str, id_number: str,
                       identity: str, ok: bool, reason: str = "") -> None:
        """One line of the 同步日志; a failure is an alert (提醒预警)."""
        async with self.engine.begin() as conn:
            await conn.execute(insert(DifficultySyncLogRow).values(
                record_id=record_id[:32], target=target[:12], action=action[:8],
                id_number=id_number[:18], identity=identity[:2],
                status="ok" if ok else "failed", alert=not ok, reason=mask_text(reason),
                at=utc_now()))

    async def sync_log(self, *, status: str | None = None, limit: int = 100,
                       offset: int = 0) -> list[dict[str, Any]]:
        q = select(DifficultySyncLogRow.__table__).order_by(DifficultySyncLogRow.id.desc())
        if status is not None:
            q = q.where(DifficultySyncLogRow.status == status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_row(r) for r in rows]

    # ------------------------------------------------------------ choice cases (1487)

    async def cases(self, *, status: str | None = "open", limit: int = 100,
                    offset: int = 0) -> list[dict[str, Any]]:
        q = select(DifficultyCaseRow.__table__).order_by(DifficultyCaseRow.created_at)
        if status is not None:
            q = q.where(DifficultyCaseRow.status == status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_row(r) for r in rows]

    async def choose(self, case_id: str, identity: str, actor: str
                     ) -> tuple[Literal["ok", "not_found", "conflict", "invalid"],
                                dict[str, Any] | None, dict[str, Any] | None]:
        """The caseworker's choice: ``identity`` (one of the case's options, still in
        force) now carries the treatment. ``(outcome, case, the held identity)``."""
        t = DifficultyIdentityRow
        async with self.engine.begin() as conn:
            r = (await conn.execute(select(DifficultyCaseRow.__table__).where(
                DifficultyCaseRow.id == case_id))).mappings().first()
            if r is None:
                return "not_found", None, None
            case = _row(r)
            if case["status"] != "open":
                return "conflict", case, None
            held = await self._held(conn, case["id_number"], identity)
            if identity not in json.loads(case["options"]) or not held or not held["active"]:
                return "invalid", case, None
            done = await conn.execute(update(DifficultyCaseRow).where(
                DifficultyCaseRow.id == case_id, DifficultyCaseRow.status == "open").values(
                status="closed", chosen=identity, actor=actor[:64], closed_at=utc_now()))
            if not done.rowcount:
                return "conflict", case, None
            await conn.execute(update(t).where(t.id_number == case["id_number"]).values(
                is_primary=False))
            await conn.execute(update(t).where(and_(
                t.id_number == case["id_number"], t.identity == identity)).values(is_primary=True))
            case |= {"status": "closed", "chosen": identity, "actor": actor[:64]}
            held["is_primary"] = True
        return "ok", case, held
