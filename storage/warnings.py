"""F8 高额费用预警: runs per month, and one row per department, month and person.

Alembic revision 0009 creates both tables. A row's id is derived from department +
month + ID number (``contracts.warnings.warning_id``), and ``add`` inserts or keeps
what is there: running a month twice finds its rows instead of making new ones, and
only rows still ``pending`` are published (``services.warnings``).

Statuses of a row::

    pending       computed and recorded, not yet on its lane (a run that stopped here
                  publishes it next time: resumable)
    queued        published to the department's lane
    acknowledged  the department acknowledged it (``ack_no``): final
    rejected      the department refused it (reason), or it was dead-lettered
    dead          retries exhausted; a 补发 queues it again

The row keeps the payload it was published with (personal data, as the dead-letter
archive keeps raw bodies); every answer outside the hub is masked (``masked_row``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.masking import mask_id, mask_name, mask_text
from contracts.warnings import ExpenseWarning, warning_message
from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["FINAL", "STATUSES", "ExpenseWarningRow", "WarningRunRow", "WarningStore",
           "masked_row"]

STATUSES: Final = ("pending", "queued", "acknowledged", "rejected", "dead")
FINAL: Final = frozenset({"acknowledged"})


class WarningRunRow(Base):
    """One month's run: when, by whom, how many people and warnings."""

    __tablename__ = "expense_warning_runs"

    month: Mapped[str] = mapped_column(String(6), primary_key=True)
    status: Mapped[str] = mapped_column(String(12))
    runs: Mapped[int] = mapped_column(Integer, default=0)
    people: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    published: Mapped[int] = mapped_column(Integer, default=0)
    """Warnings put on their lanes by the latest run (0 when it had nothing new)."""
    actor: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExpenseWarningRow(Base):
    """One person on one department's list of one month."""

    __tablename__ = "expense_warnings"
    __table_args__ = (Index("ix_expense_warnings_month_department", "month", "department"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[str] = mapped_column(String(6))
    department: Mapped[str] = mapped_column(String(20))
    id_number: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(60))
    rural: Mapped[bool] = mapped_column(Boolean)
    self_paid: Mapped[str] = mapped_column(String(20))
    kinds: Mapped[str] = mapped_column(String(40))
    line: Mapped[str] = mapped_column(String(20))
    serial: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), index=True)
    ack_no: Mapped[str] = mapped_column(String(64), default="")
    reason_code: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    resends: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


_TIMES = ("created_at", "updated_at", "acked_at", "started_at", "finished_at")


def _as_dict(row: Any) -> dict[str, Any]:
    d = dict(row)
    for k in _TIMES:
        if k in d:
            d[k] = as_utc(d[k])
    return d


def _iso(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in d.items()}


def masked_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API answers it: ID number and name masked, the payload left out."""
    out = {k: v for k, v in row.items() if k != "payload"}
    out["id_number"] = mask_id(str(row.get("id_number", "")))
    out["name"] = mask_name(str(row.get("name", "")))
    out["reason"] = mask_text(str(row.get("reason", "")))
    out["kinds"] = str(row.get("kinds", "")).split(",") if row.get("kinds") else []
    return _iso(out)


class WarningStore:
    """Async store of F8 runs and warnings on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    # -- runs ------------------------------------------------------------------------------

    async def start_run(self, month: str, actor: str) -> None:
        now = utc_now()
        stmt = self._insert(WarningRunRow).values(
            month=month, status="running", runs=1, people=0, warnings=0, published=0,
            actor=actor[:64], started_at=now, finished_at=None)
        stmt = stmt.on_conflict_do_update(index_elements=["month"], set_={
            "status": "running", "runs": WarningRunRow.runs + 1, "actor": actor[:64],
            "started_at": now, "finished_at": None})
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def finish_run(self, month: str, *, people: int, warnings: int,
                         published: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(WarningRunRow).where(WarningRunRow.month == month).values(
                status="done", people=people, warnings=warnings, published=published,
                finished_at=utc_now()))

    async def fail_run(self, month: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(WarningRunRow).where(WarningRunRow.month == month)
                               .values(status="failed", finished_at=utc_now()))

    async def run(self, month: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(WarningRunRow.__table__).where(
                WarningRunRow.month == month))).mappings().first()
        return _iso(_as_dict(row)) if row else None

    # -- warnings --------------------------------------------------------------------------

    async def add(self, warnings: Sequence[ExpenseWarning]) -> int:
        """Record each warning not yet recorded (status pending); how many were new."""
        now = utc_now()
        rows = [{"id": w.id, "month": w.month, "department": w.department,
                 "id_number": w.person.id_number[:18], "name": w.person.name[:60],
                 "rural": w.person.rural, "self_paid": f"{w.person.self_paid:.2f}",
                 "kinds": ",".join(w.kinds), "line": f"{w.line:.2f}", "serial": w.serial,
                 "payload": json.dumps(warning_message(w).payload, ensure_ascii=False),
                 "status": "pending", "ack_no": "", "reason_code": "", "reason": "",
                 "resends": 0, "created_at": now, "updated_at": now, "acked_at": None}
                for w in warnings]
        new = 0
        async with self.engine.begin() as conn:
            for i in range(0, len(rows), 500):
                stmt = (self._insert(ExpenseWarningRow).values(rows[i:i + 500])
                        .on_conflict_do_nothing().returning(ExpenseWarningRow.id))
                new += len((await conn.execute(stmt)).all())
        return new

    async def get(self, warning_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ExpenseWarningRow.__table__).where(
                ExpenseWarningRow.id == warning_id))).mappings().first()
        return _as_dict(row) if row else None

    async def rows(self, month: str, *, department: str | None = None,
                   statuses: Iterable[str] | None = None, limit: int = 100_000,
                   offset: int = 0) -> list[dict[str, Any]]:
        q = select(ExpenseWarningRow.__table__).where(ExpenseWarningRow.month == month)
        if department is not None:
            q = q.where(ExpenseWarningRow.department == department)
        if statuses is not None:
            q = q.where(ExpenseWarningRow.status.in_(tuple(statuses)))
        q = q.order_by(ExpenseWarningRow.department, ExpenseWarningRow.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_as_dict(r) for r in rows]

    async def move(self, warning_id: str, *, expect: Iterable[str], status: str,
                   ack_no: str | None = None, reason_code: str | None = None,
                   reason: str | None = None, resend: bool = False) -> bool:
        """Compare-and-set from one of ``expect`` to ``status``; whether it moved."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = utc_now()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "acknowledged":
            values["acked_at"] = now
        if ack_no is not None:
            values["ack_no"] = ack_no[:64]
        if reason_code is not None:
            values["reason_code"] = reason_code[:40]
        if reason is not None:
            values["reason"] = mask_text(reason)[:2000]
        if resend:
            values["resends"] = ExpenseWarningRow.resends + 1
        async with self.engine.begin() as conn:
            result = await conn.execute(update(ExpenseWarningRow).where(
                ExpenseWarningRow.id == warning_id,
                ExpenseWarningRow.status.in_(tuple(expect))).values(**values))
        return bool(result.rowcount)

    async def summary(self, month: str) -> dict[str, dict[str, int]]:
        """Per department, the count of each status (every status present)."""
        q = (select(ExpenseWarningRow.department, ExpenseWarningRow.status, func.count())
             .where(ExpenseWarningRow.month == month)
             .group_by(ExpenseWarningRow.department, ExpenseWarningRow.status))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        out: dict[str, dict[str, int]] = {}
        for dept, status, n in rows:
            out.setdefault(str(dept), {s: 0 for s in STATUSES})[str(status)] = int(n)
        return out
