"""F14 对账 with designated institutions: runs, 单边帐 cases, exchanged files, notices.

Alembic revision 0018 creates the tables. A run is one reconciliation of an institution
and day (its trigger, 平/不平, the differing totals, the diagnosis down to setl_id). A
单边帐 case is one per institution, day and setl_id (``contracts.institution_recon
.case_id``), so a day reconciled twice holds each case once. Cases move by
compare-and-set on their status (``move``)::

    held        detected, waiting (for the rule's grace time, or for a caseworker)
    resolving   a resolution (reverse / complete) is on the ``institution.resolve`` lane
    resolved    the institution made it; the day was re-reconciled (``rereconciled``)
    failed      the resolution was refused or given up (dead-lettered): a caseworker again

Files are the 9101 uploads and the 3202 result files (base64, by ``file_qury_no``).
Notices are the 移动支付 / 电子处方 settlements the hub was told of (H3205).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from sqlalchemy import DateTime, String, Text, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["CASE_STATUSES", "InstitutionReconStore", "ReconCaseRow", "ReconFileRow",
           "ReconNoticeRow", "ReconRunRow"]

CASE_STATUSES: Final = ("held", "resolving", "resolved", "failed")


class ReconRunRow(Base):
    __tablename__ = "recon_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12), index=True)
    stmt_date: Mapped[str] = mapped_column(String(10), index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(String(12))
    differing: Mapped[str] = mapped_column(Text, default="{}")
    institution: Mapped[str] = mapped_column(Text, default="{}")
    core: Mapped[str] = mapped_column(Text, default="{}")
    findings: Mapped[str] = mapped_column(Text, default="[]")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReconCaseRow(Base):
    __tablename__ = "recon_cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12), index=True)
    stmt_date: Mapped[str] = mapped_column(String(10))
    setl_id: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(12))
    chnl_type: Mapped[str] = mapped_column(String(2))
    row: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), index=True)
    rule: Mapped[str] = mapped_column(String(12), default="")
    action: Mapped[str] = mapped_column(String(12), default="")
    actor: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    rereconciled: Mapped[str] = mapped_column(String(12), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReconFileRow(Base):
    __tablename__ = "recon_files"

    file_qury_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(12))
    filename: Mapped[str] = mapped_column(String(80))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReconNoticeRow(Base):
    __tablename__ = "recon_notices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12), index=True)
    setl_date: Mapped[str] = mapped_column(String(10))
    setl_id: Mapped[str] = mapped_column(String(30))
    chnl_type: Mapped[str] = mapped_column(String(2))
    row: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_JSON_COLUMNS: Final = ("differing", "institution", "core", "findings", "row")


def _as_dict(row: Any) -> dict[str, Any]:
    d = dict(row)
    for k in ("created_at", "updated_at", "received_at"):
        if isinstance(d.get(k), datetime):
            d[k] = as_utc(d[k]).isoformat()  # type: ignore[union-attr]
    for k in _JSON_COLUMNS:
        if isinstance(d.get(k), str):
            d[k] = json.loads(d[k] or "null")
    return d


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)


class InstitutionReconStore:
    """Async store of the F14 tables on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    # -- runs ---------------------------------------------------------------------------
    async def add_run(self, run: dict[str, Any]) -> None:
        values = {"created_at": utc_now(), **{k: _text(v) if k in _JSON_COLUMNS else v
                                              for k, v in run.items()}}
        async with self.engine.begin() as conn:
            await conn.execute(self._insert(ReconRunRow).values(values))

    async def run(self, run_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ReconRunRow.__table__).where(
                ReconRunRow.id == run_id))).mappings().first()
        return _as_dict(row) if row else None

    async def runs(self, code: str, stmt_date: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ReconRunRow.__table__).where(
                ReconRunRow.fixmedins_code == code, ReconRunRow.stmt_date == stmt_date)
                .order_by(ReconRunRow.created_at))).mappings().all()
        return [_as_dict(r) for r in rows]

    # -- 单边帐 cases --------------------------------------------------------------------
    async def hold(self, case: dict[str, Any]) -> bool:
        """Store a detected case as ``held``; False when it is already known (any status)."""
        now = utc_now()
        values = {"status": "held", "created_at": now, "updated_at": now,
                  **{k: _text(v) if k in _JSON_COLUMNS else v for k, v in case.items()}}
        stmt = (self._insert(ReconCaseRow).values(values).on_conflict_do_nothing()
                .returning(ReconCaseRow.id))
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def case(self, case_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ReconCaseRow.__table__).where(
                ReconCaseRow.id == case_id))).mappings().first()
        return _as_dict(row) if row else None

    async def cases(self, *, status: str | None = None, code: str | None = None,
                    stmt_date: str | None = None, limit: int = 500,
                    offset: int = 0) -> list[dict[str, Any]]:
        q = select(ReconCaseRow.__table__).order_by(ReconCaseRow.created_at, ReconCaseRow.id)
        if status is not None:
            q = q.where(ReconCaseRow.status == status)
        if code is not None:
            q = q.where(ReconCaseRow.fixmedins_code == code)
        if stmt_date is not None:
            q = q.where(ReconCaseRow.stmt_date == stmt_date)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_as_dict(r) for r in rows]

    async def move(self, case_id: str, *, expect: tuple[str, ...], **values: Any) -> bool:
        """Compare-and-set from one of ``expect``; only the columns given change."""
        if "status" in values and values["status"] not in CASE_STATUSES:
            raise ValueError(f"unknown status {values['status']!r}")
        values["updated_at"] = utc_now()
        async with self.engine.begin() as conn:
            result = await conn.execute(update(ReconCaseRow).where(
                ReconCaseRow.id == case_id, ReconCaseRow.status.in_(expect)).values(**values))
        return bool(result.rowcount)

    # -- files ---------------------------------------------------------------------------
    async def put_file(self, file_qury_no: str, code: str, kind: str, filename: str,
                       content_b64: str) -> None:
        stmt = self._insert(ReconFileRow).values(
            file_qury_no=file_qury_no, fixmedins_code=code, kind=kind, filename=filename[:80],
            content=content_b64, created_at=utc_now()).on_conflict_do_nothing()
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def file(self, file_qury_no: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ReconFileRow.__table__).where(
                ReconFileRow.file_qury_no == file_qury_no))).mappings().first()
        return _as_dict(row) if row else None

    # -- notices -------------------------------------------------------------------------
    async def add_notice(self, code: str, setl_date: str, row: dict[str, Any]) -> bool:
        """A 移动支付 / 电子处方 settlement; False when that setl_id was noticed before."""
        stmt = self._insert(ReconNoticeRow).values(
            id=f"{code}:{row['setl_id']}", fixmedins_code=code, setl_date=setl_date,
            setl_id=row["setl_id"], chnl_type=row.get("chnl_type", "1"), row=_text(row),
            received_at=utc_now()).on_conflict_do_nothing().returning(ReconNoticeRow.id)
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def notices(self, code: str, setl_date: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ReconNoticeRow.__table__).where(
                ReconNoticeRow.fixmedins_code == code, ReconNoticeRow.setl_date == setl_date)
                .order_by(ReconNoticeRow.setl_id))).mappings().all()
        return [_as_dict(r) for r in rows]
