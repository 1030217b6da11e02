"""Durable jobs (``services.job_runner``): one row per job, its progress and its lease.

Alembic revision 0016 creates the table. A row is what a restarted hub needs to carry
on: the handler's kind, the raw params it resumes with (``resume``: ids and filters,
not personal data where avoidable), the checkpoint it saved last, its counts. Readers
see ``params`` (a masked copy) and ``report`` (masked by the runner).

Multi-process safety is a lease: a process runs a job only while it holds
``lease_owner`` with ``lease_until`` in the future, and every write of progress or of
the end is conditional on still holding it (``WHERE lease_owner = :me``). A process
that dies stops renewing; once the lease has expired any other process (or the same
one restarted) takes the row over (``take``) and runs it again from its checkpoint.
A graceful stop releases the lease at once (``release``) so the next start does not
wait for the expiry.

States: queued (not taken yet, or over the concurrency limit) -> running -> done |
failed | cancelled. A cancel is a flag (``cancel_requested``) the handler reads; a
queued job is cancelled at once.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.times import as_utc, utc, utc_now

__all__ = ["ACTIVE", "FINISHED", "JobRecord", "JobRow", "JobStore"]

ACTIVE: Final = ("queued", "running")
FINISHED: Final = ("done", "failed", "cancelled")


class JobRow(Base):
    """One durable job. ``resume`` and ``checkpoint`` are the handler's; ``params`` and
    ``report`` are for readers (masked)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(12), index=True)
    started_by: Mapped[str] = mapped_column(String(80), index=True)
    role: Mapped[str] = mapped_column(String(20))
    params: Mapped[str] = mapped_column(Text)
    resume: Mapped[str] = mapped_column(Text)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint: Mapped[str] = mapped_column(Text)
    report: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(120), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_jobs_state_lease_until", "state", "lease_until"),)


@dataclass(frozen=True)
class JobRecord:
    """A row as Python sees it (JSON columns parsed, times in UTC)."""

    id: str
    kind: str
    state: str
    started_by: str
    role: str
    params: dict[str, Any]
    resume: dict[str, Any]
    total: int | None
    done: int
    failed: int
    skipped: int
    checkpoint: dict[str, Any]
    report: dict[str, Any]
    error: str | None
    cancel_requested: bool
    lease_owner: str | None
    lease_until: datetime | None
    runs: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _dump(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), ensure_ascii=False, default=str)


def _load(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}


def _record(m: Any) -> JobRecord:
    return JobRecord(
        id=m["id"], kind=m["kind"], state=m["state"], started_by=m["started_by"],
        role=m["role"], params=_load(m["params"]), resume=_load(m["resume"]), total=m["total"],
        done=m["done"], failed=m["failed"], skipped=m["skipped"],
        checkpoint=_load(m["checkpoint"]), report=_load(m["report"]), error=m["error"],
        cancel_requested=bool(m["cancel_requested"]), lease_owner=m["lease_owner"],
        lease_until=as_utc(m["lease_until"]), runs=m["runs"], created_at=utc(m["created_at"]),
        updated_at=utc(m["updated_at"]), finished_at=as_utc(m["finished_at"]))


def _free(now: datetime) -> ColumnElement[bool]:
    """Rows nobody runs: queued, or running under a lease that has expired or was let go."""
    t = JobRow
    return or_(t.state == "queued",
               (t.state == "running") & (or_(t.lease_until.is_(None), t.lease_until < now)))


class JobStore:
    """The ``jobs`` table; every write that a lease guards says whether it still held."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def insert(self, *, id: str, kind: str, started_by: str, role: str,
                     params: Mapping[str, Any], resume: Mapping[str, Any],
                     total: int | None = None, checkpoint: Mapping[str, Any] | None = None,
                     state: str = "queued") -> None:
        now = utc_now()
        async with self.engine.begin() as conn:
            await conn.execute(insert(JobRow).values(
                id=id, kind=kind[:40], state=state, started_by=started_by[:80], role=role[:20],
                params=_dump(params), resume=_dump(resume), total=total, done=0, failed=0,
                skipped=0, checkpoint=_dump(checkpoint), report="{}", error=None,
                cancel_requested=False, lease_owner=None, lease_until=None, runs=0,
                created_at=now, updated_at=now, finished_at=None))

    async def get(self, job_id: str) -> JobRecord | None:
        async with self.engine.connect() as conn:
            m = (await conn.execute(select(JobRow.__table__).where(JobRow.id == job_id))
                 ).mappings().first()
        return None if m is None else _record(m)

    async def list(self, *, kind: str | None = None, started_by: str | None = None,
                   state: str | None = None, limit: int = 50) -> builtins.list[JobRecord]:
        """Newest first."""
        t = JobRow
        where = [col == val for col, val in ((t.kind, kind), (t.started_by, started_by),
                                             (t.state, state)) if val is not None]
        q = (select(t.__table__).where(*where).order_by(t.created_at.desc(), t.id.desc())
             .limit(max(1, min(limit, 1000))))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_record(m) for m in rows]

    async def active(self, kind: str) -> int:
        """Jobs of ``kind`` queued or running, in every process."""
        q = select(func.count()).select_from(JobRow).where(JobRow.kind == kind,
                                                            JobRow.state.in_(ACTIVE))
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def free(self, kinds: Collection[str], limit: int) -> builtins.list[str]:
        """Ids of jobs of ``kinds`` nobody runs (queued, or with an expired lease), oldest
        first."""
        if not kinds or limit <= 0:
            return []
        q = (select(JobRow.id).where(JobRow.kind.in_(list(kinds)), _free(utc_now()))
             .order_by(JobRow.created_at, JobRow.id).limit(limit))
        async with self.engine.connect() as conn:
            return [r[0] for r in (await conn.execute(q)).all()]

    async def take(self, job_id: str, owner: str, lease_s: float) -> JobRecord | None:
        """Run ``job_id`` as ``owner`` if nobody does: the row after taking it, else None.
        A compare-and-set: of two processes taking one row, one wins."""
        now = utc_now()
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(JobRow).where(JobRow.id == job_id, _free(now))
                .values(state="running", lease_owner=owner[:120],
                        lease_until=now + timedelta(seconds=lease_s), runs=JobRow.runs + 1,
                        updated_at=now))
            if res.rowcount != 1:
                return None
        return await self.get(job_id)

    async def renew(self, job_id: str, owner: str, lease_s: float) -> bool | None:
        """Extend ``owner``'s lease: None when it no longer holds it, else whether a cancel
        was asked for."""
        now = utc_now()
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.lease_owner == owner,
                                     JobRow.state == "running")
                .values(lease_until=now + timedelta(seconds=lease_s)))
            if res.rowcount != 1:
                return None
            flag = (await conn.execute(select(JobRow.cancel_requested)
                                       .where(JobRow.id == job_id))).scalar_one()
        return bool(flag)

    async def cancel_requested(self, job_id: str) -> bool:
        async with self.engine.connect() as conn:
            flag = (await conn.execute(select(JobRow.cancel_requested)
                                       .where(JobRow.id == job_id))).scalar_one_or_none()
        return bool(flag)

    async def progress(self, job_id: str, owner: str, *, total: int | None, done: int,
                       failed: int, skipped: int, checkpoint: Mapping[str, Any]) -> bool:
        """Counts and checkpoint in one write; False when ``owner`` lost the lease."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.lease_owner == owner,
                                     JobRow.state == "running")
                .values(total=total, done=done, failed=failed, skipped=skipped,
                        checkpoint=_dump(checkpoint), updated_at=utc_now()))
            return res.rowcount == 1

    async def finish(self, job_id: str, owner: str, *, state: str,
                     report: Mapping[str, Any], error: str | None = None) -> bool:
        """The end of a job ``owner`` runs; False when it lost the lease meanwhile."""
        now = utc_now()
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.lease_owner == owner,
                                     JobRow.state == "running")
                .values(state=state, report=_dump(report), error=error, lease_owner=None,
                        lease_until=None, updated_at=now, finished_at=now))
            return res.rowcount == 1

    async def release(self, job_id: str, owner: str) -> bool:
        """Let go of a running job (a graceful stop): the next process takes it at once."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.lease_owner == owner,
                                     JobRow.state == "running")
                .values(lease_owner=None, lease_until=None, updated_at=utc_now()))
            return res.rowcount == 1

    async def request_cancel(self, job_id: str) -> JobRecord | None:
        """Flag a job to stop; a queued one is cancelled at once. The row after (None:
        no such job); a finished job is left as it is."""
        now = utc_now()
        async with self.engine.begin() as conn:
            await conn.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.state == "queued")
                .values(state="cancelled", cancel_requested=True, updated_at=now,
                        finished_at=now))
            await conn.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.state == "running")
                .values(cancel_requested=True, updated_at=now))
        return await self.get(job_id)
