"""F7 医疗救助平台: recipients' settlements, the monthly runs, 阳光惠民's table log.
Alembic revision 0011 creates the tables.

    assistance_settlements      one row per core settlement (``setl_id``) of a recipient:
                                from core's 结算费用同步 event (``sync_status``) and/or a
                                month's extraction (``data_status``)
    assistance_settlement_runs  one row per month of 医疗救助结算数据: runs, counts, totals
    assistance_sunshine_log     every row of 阳光惠民's 救助费用 and 机构 tables pushed (or
                                failed) per day: the day's progress, once a day per row

A settlement is recorded once (its ``setl_id``; ``record``): core reporting it again,
or a month run finding it again, keeps the first. Its two ways out move on their own:

    sync_status   ''        not reported by core's event (a run found it)
                  pending   recorded, not yet on the lane ``assistance.settlements``
                  queued    published
                  delivered the platform took it
                  rejected  the platform refused it (reason); dead: retries exhausted
    data_status   ''        in no month's 医疗救助结算数据 yet
                  pending   in its month's data, not yet pushed
                  pushed    pushed to the platform in a page of its month

Amounts are stored as strings of yuan with two decimals (exact on SQLite and
PostgreSQL alike) and read back as ``Decimal``. Every answer is masked (``masked``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Final, Literal

from sqlalchemy import (
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.assistance import AMOUNTS, Settlement, Totals
from contracts.masking import mask_id, mask_name, mask_text
from storage.difficulty import DifficultyIdentityRow
from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["SYNC_OPEN", "AssistanceStore", "NewSettlement", "RunRow", "SettlementRow",
           "SunshineLogRow", "masked"]

SYNC_OPEN: Final = ("pending", "queued", "rejected", "dead")
"""Sync statuses a delivery may still move (delivered is final)."""
Source = Literal["event", "run"]


class SettlementRow(Base):
    __tablename__ = "assistance_settlements"
    __table_args__ = (Index("ix_assistance_settlements_month_data", "month", "data_status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    setl_id: Mapped[str] = mapped_column(String(40), unique=True)
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(60))
    month: Mapped[str] = mapped_column(String(6))
    setl_date: Mapped[date] = mapped_column(Date, index=True)
    settled_at: Mapped[str] = mapped_column(String(19))
    institution_code: Mapped[str] = mapped_column(String(30))
    institution_name: Mapped[str] = mapped_column(String(100))
    med_type: Mapped[str] = mapped_column(String(6))
    medfee_total: Mapped[str] = mapped_column(String(20))
    fund_pay: Mapped[str] = mapped_column(String(20))
    serious_illness_pay: Mapped[str] = mapped_column(String(20))
    assistance_pay: Mapped[str] = mapped_column(String(20))
    self_pay: Mapped[str] = mapped_column(String(20))
    identity: Mapped[str] = mapped_column(String(2))
    department: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(8))
    sync_status: Mapped[str] = mapped_column(String(12))
    sync_reason: Mapped[str] = mapped_column(Text)
    data_status: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RunRow(Base):
    """One month's 医疗救助结算数据 run: where it stands, how many, the totals."""

    __tablename__ = "assistance_settlement_runs"

    month: Mapped[str] = mapped_column(String(6), primary_key=True)
    status: Mapped[str] = mapped_column(String(12))
    runs: Mapped[int] = mapped_column(Integer)
    recipients: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    excluded: Mapped[int] = mapped_column(Integer)
    pushed: Mapped[int] = mapped_column(Integer)
    """Rows pushed by the latest run (0 when it had nothing new)."""
    pages: Mapped[int] = mapped_column(Integer)
    totals: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SunshineLogRow(Base):
    """A row of one of 阳光惠民's tables pushed (or failed) on a day."""

    __tablename__ = "assistance_sunshine_log"
    __table_args__ = (Index("ix_assistance_sunshine_log_key", "tbl", "day", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tbl: Mapped[str] = mapped_column(String(12))
    day: Mapped[str] = mapped_column(String(8))
    ref: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NewSettlement:
    """A settlement to record, with the identity the person held that day (救助历史)."""

    __slots__ = ("department", "identity", "settlement")

    def __init__(self, settlement: Settlement, identity: str, department: str) -> None:
        self.settlement = settlement
        self.identity = identity
        self.department = department


_TIMES: Final = ("created_at", "updated_at", "started_at", "finished_at", "at")


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    for k in _TIMES:
        if k in d:
            d[k] = as_utc(d[k])
    return d


def masked(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API answers it: ID number and name masked, JSON-ready."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k == "id_number":
            v = mask_id(str(v))
        elif k == "name":
            v = mask_name(str(v))
        elif k in ("sync_reason", "error", "reason") and isinstance(v, str):
            v = mask_text(v)
        elif k == "totals" and isinstance(v, str):
            v = json.loads(v) if v else {}
        if isinstance(v, (date, datetime)):
            v = v.isoformat()
        out[k] = v
    return out


class AssistanceStore:
    """Async store of the 医疗救助平台 exchanges on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    # ------------------------------------------------------------ recipients (F7 库)

    async def held_for(self, id_numbers: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """ID number -> every identity the hub holds for that person (in force and ended)."""
        t = DifficultyIdentityRow
        out: dict[str, list[dict[str, Any]]] = {}
        async with self.engine.connect() as conn:
            for i in range(0, len(id_numbers), 500):
                rows = (await conn.execute(select(t.__table__).where(
                    t.id_number.in_(list(id_numbers[i:i + 500]))).order_by(
                    t.id_number, t.identity))).mappings().all()
                for r in rows:
                    out.setdefault(str(r["id_number"]), []).append(dict(r))
        return out

    async def recipients_of(self, first: date, last: date) -> list[str]:
        """The persons holding an identity whose period meets ``first``..``last`` (the
        month's 救助对象), by ID number."""
        t = DifficultyIdentityRow
        q = (select(t.id_number).distinct()
             .where(t.start_date <= last,
                    or_(and_(t.end_date.is_(None), t.active.is_(True)), t.end_date >= first))
             .order_by(t.id_number))
        async with self.engine.connect() as conn:
            return [str(x) for x in (await conn.execute(q)).scalars().all()]

    # ------------------------------------------------------------ settlements

    async def record(self, items: Sequence[NewSettlement], *, source: Source
                     ) -> list[tuple[dict[str, Any], bool]]:
        """Record each settlement not yet recorded; ``(row, created)`` for each. A settlement
        already there is kept as it is, except that it joins what ``source`` asks for: an
        event marks it for the sync (``sync_status`` pending) and a run for its month's
        data (``data_status`` pending), each once."""
        now = utc_now()
        out: list[tuple[dict[str, Any], bool]] = []
        mark = {"sync_status": "pending"} if source == "event" else {"data_status": "pending"}
        async with self.engine.begin() as conn:
            for item in items:
                s = item.settlement
                row = {"id": s.ref, "setl_id": s.setl_id, "id_number": s.id_number,
                       "name": s.name[:60], "month": s.month, "setl_date": s.setl_date,
                       "settled_at": s.settled_at.strftime("%Y-%m-%d %H:%M:%S"),
                       "institution_code": s.institution_code[:30],
                       "institution_name": s.institution_name[:100], "med_type": s.med_type,
                       **s.amounts(), "identity": item.identity[:2],
                       "department": item.department[:20], "source": source,
                       "sync_status": "", "sync_reason": "", "data_status": "",
                       "created_at": now, "updated_at": now} | mark
                done = await conn.execute(self._insert(SettlementRow).values(row)
                                          .on_conflict_do_nothing().returning(SettlementRow.id))
                if done.first() is not None:
                    out.append((row, True))
                    continue
                field = next(iter(mark))
                await conn.execute(update(SettlementRow).where(
                    SettlementRow.setl_id == s.setl_id, getattr(SettlementRow, field) == ""
                ).values(**mark, updated_at=now))
                kept = (await conn.execute(select(SettlementRow.__table__).where(
                    SettlementRow.setl_id == s.setl_id))).mappings().first()
                out.append((_row(kept), False))
        return out

    async def settlement(self, ref: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(SettlementRow.__table__).where(
                SettlementRow.id == ref))).mappings().first()
        return _row(r) if r else None

    async def set_sync(self, ref: str, status: str, *, expect: Iterable[str],
                       reason: str = "") -> bool:
        """Compare-and-set of a settlement's sync status; whether it moved."""
        async with self.engine.begin() as conn:
            done = await conn.execute(update(SettlementRow).where(
                SettlementRow.id == ref, SettlementRow.sync_status.in_(tuple(expect))).values(
                sync_status=status, sync_reason=mask_text(reason)[:2000],
                updated_at=utc_now()))
        return bool(done.rowcount)

    async def settlements(self, *, month: str | None = None, sync_status: str | None = None,
                          limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        q = select(SettlementRow.__table__).order_by(SettlementRow.setl_date,
                                                     SettlementRow.setl_id)
        if month is not None:
            q = q.where(SettlementRow.month == month)
        if sync_status is not None:
            q = q.where(SettlementRow.sync_status == sync_status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_row(r) for r in rows]

    # ------------------------------------------------------------ a month's data (1487)

    async def data_due(self, month: str, *, limit: int) -> list[dict[str, Any]]:
        """The month's rows of 医疗救助结算数据 not pushed yet, in a stable order (so a page
        stopped by a failure is the same page next time: the same serial)."""
        q = (select(SettlementRow.__table__)
             .where(SettlementRow.month == month, SettlementRow.data_status == "pending")
             .order_by(SettlementRow.setl_id).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_row(r) for r in rows]

    async def data_pushed(self, refs: Sequence[str]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(SettlementRow).where(
                SettlementRow.id.in_(list(refs)), SettlementRow.data_status == "pending"
            ).values(data_status="pushed", updated_at=utc_now()))

    async def data_totals(self, month: str) -> Totals:
        """The header of the month's 医疗救助结算数据: its rows counted and summed (Decimal)."""
        cols = [getattr(SettlementRow, k) for k in AMOUNTS]
        q = select(*cols).where(SettlementRow.month == month,
                                SettlementRow.data_status.in_(("pending", "pushed")))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return Totals.of(dict(zip(AMOUNTS, r, strict=True)) for r in rows)

    # ------------------------------------------------------------ runs

    async def start_run(self, month: str, actor: str) -> None:
        now = utc_now()
        stmt = self._insert(RunRow).values(
            month=month, status="running", runs=1, recipients=0, rows=0, excluded=0, pushed=0,
            pages=0, totals="", error="", actor=actor[:64], started_at=now, finished_at=None)
        stmt = stmt.on_conflict_do_update(index_elements=["month"], set_={
            "status": "running", "runs": RunRow.runs + 1, "actor": actor[:64], "error": "",
            "started_at": now, "finished_at": None})
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def finish_run(self, month: str, *, status: Literal["done", "failed"],
                         recipients: int | None = None, rows: int | None = None,
                         excluded: int | None = None, pushed: int = 0, pages: int = 0,
                         totals: Totals | None = None, error: str = "") -> None:
        values: dict[str, Any] = {"status": status, "pushed": pushed, "pages": pages,
                                  "error": mask_text(error)[:2000], "finished_at": utc_now()}
        for k, v in (("recipients", recipients), ("rows", rows), ("excluded", excluded)):
            if v is not None:
                values[k] = v
        if totals is not None:
            values["totals"] = json.dumps(totals.as_dict(), ensure_ascii=False)
        async with self.engine.begin() as conn:
            await conn.execute(update(RunRow).where(RunRow.month == month).values(**values))

    async def run(self, month: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(RunRow.__table__).where(
                RunRow.month == month))).mappings().first()
        return _row(r) if r else None

    async def runs(self, *, limit: int = 24) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(RunRow.__table__).order_by(
                RunRow.month.desc()).limit(limit))).mappings().all()
        return [_row(r) for r in rows]

    # ------------------------------------------------------------ 阳光惠民 (1497)

    async def fees_due(self, day: str, first: date, last: date, *,
                       limit: int) -> list[dict[str, Any]]:
        """救助费用 rows (settlements settled ``first``..``last``) not pushed ok on ``day``."""
        lg = SunshineLogRow
        pushed = select(lg.id).where(lg.tbl == "fees", lg.day == day, lg.status == "ok",
                                     lg.ref == SettlementRow.id).exists()
        q = (select(SettlementRow.__table__)
             .where(SettlementRow.setl_date >= first, SettlementRow.setl_date <= last, ~pushed)
             .order_by(SettlementRow.setl_date, SettlementRow.setl_id).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_row(r) for r in rows]

    async def sunshine_pushed(self, table: str, day: str) -> set[str]:
        """The refs of ``table`` pushed ok on ``day``."""
        lg = SunshineLogRow
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(lg.ref).where(
                lg.tbl == table, lg.day == day, lg.status == "ok"))).scalars().all()
        return {str(r) for r in rows}

    async def log_sunshine(self, table: str, day: str, refs: Sequence[str], *, ok: bool,
                           reason: str = "") -> None:
        """The log lines of a page of ``table`` pushed (or failed) on ``day``."""
        if not refs:
            return
        now = utc_now()
        async with self.engine.begin() as conn:
            await conn.execute(insert(SunshineLogRow), [
                {"tbl": table[:12], "day": day[:8], "ref": ref[:40],
                 "status": "ok" if ok else "failed", "reason": mask_text(reason)[:2000],
                 "at": now} for ref in refs])
