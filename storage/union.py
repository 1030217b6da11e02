"""F12 union cases (工会互助): cases, their timers, breach alerts, the union's yearly tables.

Alembic revision 0010 creates the tables. Timers are columns (``accept_due``,
``close_due``, ``archive_due``: Beijing dates as ``YYYY-MM-DD``) written whenever a
case moves, so they survive restarts and are read with the case; ``pauses`` is the
JSON list of clock stops (applicant delay, investigation). An alert is one row per
case and timer (``union_alerts``, unique), so a breach is alerted once however many
checkers look. Status changes are compare-and-set on the current status (``move``).

Statuses::

    accepted            受理: the closure timer runs
    refused             不予受理 (materials incomplete, not on the roster, ...): final
    awaiting_applicant  waiting for the applicant unit (clock stopped, line 70)
    investigating       调查/面核 (clock stopped, line 73)
    closed              结案: the result file went to the union
    final               the union's 终审结案: the archive timer runs
    archived            档案返还: final

Personal data (applicant name, ID number, phone; the application summary) is kept for
the work and masked in every answer (``masked_case``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Boolean, DateTime, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.masking import mask_id, mask_name, mask_phone, mask_text, mask_value
from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["CLOSED_STATUSES", "STATUSES", "UnionAlertRow", "UnionCaseRow", "UnionStandardsRow",
           "UnionStore", "case_id_for", "masked_case"]

STATUSES: Final = ("accepted", "refused", "awaiting_applicant", "investigating", "closed",
                   "final", "archived")
CLOSED_STATUSES: Final = frozenset({"refused", "archived"})


def case_id_for(case_no: str) -> str:
    return hashlib.sha256(f"union-case:{case_no}".encode()).hexdigest()[:32]


class UnionCaseRow(Base):
    __tablename__ = "union_cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(24), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    unit_code: Mapped[str] = mapped_column(String(20))
    unit_name: Mapped[str] = mapped_column(String(80))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), index=True)
    applicant_name: Mapped[str] = mapped_column(String(30))
    applicant_id: Mapped[str] = mapped_column(String(18))
    applicant_phone: Mapped[str] = mapped_column(String(20), default="")
    application: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    complete_on: Mapped[str] = mapped_column(String(10))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accept_due: Mapped[str] = mapped_column(String(10))
    accepted_on: Mapped[str | None] = mapped_column(String(10), nullable=True)
    close_due: Mapped[str | None] = mapped_column(String(10), nullable=True)
    closed_on: Mapped[str | None] = mapped_column(String(10), nullable=True)
    final_on: Mapped[str | None] = mapped_column(String(10), nullable=True)
    archive_due: Mapped[str | None] = mapped_column(String(10), nullable=True)
    archived_on: Mapped[str | None] = mapped_column(String(10), nullable=True)
    pauses: Mapped[str] = mapped_column(Text, default="[]")
    decision: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    payable: Mapped[str] = mapped_column(String(20), default="")
    result_file: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UnionAlertRow(Base):
    """A timer breached: one row per case and timer."""

    __tablename__ = "union_alerts"
    __table_args__ = (UniqueConstraint("case_id", "timer", name="uq_union_alerts_case_timer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(32))
    case_no: Mapped[str] = mapped_column(String(24))
    timer: Mapped[str] = mapped_column(String(12))
    due: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text, default="")
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UnionStandardsRow(Base):
    """The union's tables of one year (roster, 给付标准, 审核规则) as sent, JSON."""

    __tablename__ = "union_standards"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _as_dict(row: Any) -> dict[str, Any]:
    d = dict(row)
    for k in ("received_at", "updated_at", "raised_at"):
        if k in d:
            d[k] = as_utc(d[k])
    if "pauses" in d:
        d["pauses"] = json.loads(d["pauses"] or "[]")
    return d


def masked_case(case: dict[str, Any]) -> dict[str, Any]:
    """A case as the API answers it: personal data masked, the result file left out."""
    out = {k: v for k, v in case.items() if k not in ("result_file", "application")}
    out["applicant_name"] = mask_name(str(case.get("applicant_name", "")))
    out["applicant_id"] = mask_id(str(case.get("applicant_id", "")))
    phone = str(case.get("applicant_phone") or "")
    out["applicant_phone"] = mask_phone(phone) if phone else ""
    out["reason"] = mask_text(str(case.get("reason", "")))
    app = json.loads(case["application"]) if case.get("application") else {}
    out["application"] = mask_value(app)
    for k, v in list(out.items()):
        if isinstance(v, datetime):
            out[k] = v.isoformat()
    return out


class UnionStore:
    """Async store of union cases on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    async def create(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """``(row, True)`` for a new case, ``(the stored one, False)`` when its case_no exists."""
        now = utc_now()
        values = {"received_at": now, "updated_at": now, "pauses": "[]", **row}
        values["pauses"] = (values["pauses"] if isinstance(values["pauses"], str)
                            else json.dumps(values["pauses"]))
        stmt = (self._insert(UnionCaseRow).values(values).on_conflict_do_nothing()
                .returning(UnionCaseRow.id))
        async with self.engine.begin() as conn:
            inserted = (await conn.execute(stmt)).first()
        stored = await self.get(values["id"])
        if stored is None:  # pragma: no cover - a conflict on case_no alone
            raise RuntimeError(f"union case {values['case_no']} conflicts but cannot be read")
        return stored, inserted is not None

    async def get(self, case_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(UnionCaseRow.__table__).where(
                UnionCaseRow.id == case_id))).mappings().first()
        return _as_dict(row) if row else None

    async def find(self, *, status: str | None = None, open_only: bool = False,
                   limit: int = 500, offset: int = 0) -> list[dict[str, Any]]:
        q = select(UnionCaseRow.__table__).order_by(UnionCaseRow.received_at, UnionCaseRow.id)
        if status is not None:
            q = q.where(UnionCaseRow.status == status)
        if open_only:
            q = q.where(UnionCaseRow.status.not_in(CLOSED_STATUSES))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_as_dict(r) for r in rows]

    async def move(self, case_id: str, *, expect: tuple[str, ...],
                   **values: Any) -> bool:
        """Compare-and-set from one of ``expect``; only the columns given change."""
        if "status" in values and values["status"] not in STATUSES:
            raise ValueError(f"unknown status {values['status']!r}")
        if "pauses" in values and not isinstance(values["pauses"], str):
            values["pauses"] = json.dumps(values["pauses"])
        if "reason" in values:
            values["reason"] = mask_text(str(values["reason"]))[:2000]
        values["updated_at"] = utc_now()
        async with self.engine.begin() as conn:
            result = await conn.execute(update(UnionCaseRow).where(
                UnionCaseRow.id == case_id, UnionCaseRow.status.in_(expect)).values(**values))
        return bool(result.rowcount)

    async def put_standards(self, year: int, body: dict[str, Any]) -> None:
        now = utc_now()
        text = json.dumps(body, ensure_ascii=False, default=str)
        stmt = self._insert(UnionStandardsRow).values(year=year, body=text, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["year"],
                                          set_={"body": text, "updated_at": now})
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def standards(self, year: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(UnionStandardsRow.body).where(
                UnionStandardsRow.year == year))).first()
        return json.loads(row[0]) if row else None

    async def alert(self, case: dict[str, Any], timer: str, due: str, detail: str) -> bool:
        """Record a breach once; whether this call recorded it."""
        stmt = (self._insert(UnionAlertRow).values(
            case_id=case["id"], case_no=case["case_no"], timer=timer, due=due,
            detail=mask_text(detail), raised_at=utc_now())
            .on_conflict_do_nothing().returning(UnionAlertRow.id))
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def alerts(self, *, limit: int = 200) -> list[dict[str, Any]]:
        q = select(UnionAlertRow.__table__).order_by(UnionAlertRow.raised_at.desc(),
                                                     UnionAlertRow.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        out = []
        for r in rows:
            d = _as_dict(r)
            d["raised_at"] = d["raised_at"].isoformat()
            out.append(d)
        return out
