"""Bulk 补发: records picked from the transactions table, resent one by one at a bounded rate.

The selection is ``services.resend_targets``; each item is one audited resend
(``services.resender``). A job's start and end are audited too (action
``resend.<subject>.bulk``, target the job id).

Jobs live in this process's memory only: they are lost on restart and not
visible from other replicas; the last ``MAX_JOBS_KEPT`` are kept. Every item
is journaled, so an interrupted job can be judged from the transactions table
and simply re-run (the selection skips records resent since). At most
``MAX_RUNNING_JOBS`` run at once.

Jobs exclude each other per record, across hub processes (``services.resend_claims``):
a job claims the records it selected before it resends any and holds them while it
runs. A record another running job holds is left to that job and reported as
``in_other_job`` (with that job's id in ``skips``), so two identical bulk requests
started at once resend each record once. Skipping, not refusing the second job with
409: selections overlap without being identical (another status, type or date), a
second process cannot compare its selection with a job it does not know, and per
record both cases come out right. Each item is checked again just before it is sent:
a record resent since it was selected (by a job that has ended meanwhile) is skipped
as ``RESENT_SINCE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.employee import ResendRequest, check_stop_date, check_stop_reason
from contracts.envelope import new_id
from contracts.errors import HubError, ValidationFailed
from contracts.masking import mask_text
from contracts.resend import RecordResendRequest
from services.audit import Actor, Caller
from services.resend_claims import CLAIM_TTL_S, MemoryResendClaims, ResendClaims, claim_key
from services.resend_targets import (
    SUBJECT_TYPES,
    ResendFilter,
    Target,
    select_resend_targets,
    still_latest,
)
from services.resender import AnyResend, Resender, masked_target

__all__ = ["MAX_FAILURES_SHOWN", "MAX_JOBS_KEPT", "MAX_RUNNING_JOBS", "BulkResendRequest",
           "Busy", "ClaimsUnavailable", "ResendJob", "ResendJobs"]

log = logging.getLogger("hub.resend")

MAX_JOBS_KEPT: Final = 100
MAX_RUNNING_JOBS: Final = 2
MAX_FAILURES_SHOWN: Final = 100


class BulkResendRequest(BaseModel):
    """A bulk resend: the filter, what to send, why, and how fast."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    subject: Literal["employee", "unit", "flexible", "resident"] = "employee"
    filter: ResendFilter
    action: Literal["enroll", "update", "stop"]
    stop_date: date | None = Field(default=None, description="停保日期, for action stop")
    stop_reason: str = Field(default="01", description="停保原因, for action stop")
    reason: str = Field(min_length=2, max_length=500, description="why the resend (audited)")
    rate_per_s: float = Field(default=5.0, gt=0, le=50, description="resends per second")
    limit: int = Field(default=500, ge=1, le=5000, description="at most this many persons")

    @model_validator(mode="after")
    def _stop(self) -> BulkResendRequest:
        types = SUBJECT_TYPES[self.subject]
        if self.filter.type is not None and self.filter.type not in types:
            raise ValueError(f"filter.type must be one of {', '.join(types)}")
        if self.subject == "employee" and self.action == "update":
            raise ValueError("employees are resent with action enroll or stop")
        if self.action == "stop" and self.stop_date is None:
            raise ValueError("stop_date is required for action stop")
        if self.action != "stop" and self.stop_date is not None:
            raise ValueError("stop_date is only for action stop")
        if self.stop_date is not None:
            check_stop_date(self.stop_date)
        check_stop_reason(self.stop_reason)
        return self

    def item(self, t: Target) -> AnyResend:
        """The one-record request for a picked target; ValidationError if it cannot be one."""
        if self.subject == "employee":
            unit, _, id_number = t.business_key.partition(":")
            return ResendRequest(id_number=id_number, unit_credit_code=unit,
                                 action=self.action,
                                 stop_date=self.stop_date, stop_reason=self.stop_reason,
                                 reason=self.reason)
        return RecordResendRequest(subject=self.subject, key=t.business_key.rpartition(":")[2],
                                   action=self.action, stop_date=self.stop_date,
                                   stop_reason=self.stop_reason, reason=self.reason)


class Busy(Exception):
    """``MAX_RUNNING_JOBS`` jobs are running already: try again later."""

    def __init__(self) -> None:
        super().__init__(f"{MAX_RUNNING_JOBS} resend jobs are running; try again later")


class ClaimsUnavailable(Exception):
    """The claim store (Redis) did not answer: no job is started, nothing is resent."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"the resend claims cannot be taken ({type(exc).__name__}: {exc}); "
                         "try again later")


@dataclass
class ResendJob:
    """Progress of one bulk resend: of ``total`` records it holds, ``done`` = published,
    ``failed`` = not resent, ``skipped`` = resent by another job since it was selected;
    ``in_other_job`` records were selected but held by another running job."""

    job_id: str
    actor: str
    role: str
    action: str
    reason: str
    filter: dict[str, Any]
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    in_other_job: int = 0
    state: Literal["running", "finished", "cancelled", "crashed"] = "running"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    correlation_ids: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    skips: list[dict[str, str]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "state": self.state, "action": self.action,
            "actor": self.actor, "reason": self.reason, "filter": self.filter,
            "total": self.total, "done": self.done, "failed": self.failed,
            "skipped": self.skipped, "in_other_job": self.in_other_job,
            "pending": self.total - self.done - self.failed - self.skipped,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "correlation_ids": list(self.correlation_ids), "failures": list(self.failures),
            "skips": list(self.skips),
        }

    def skip(self, t: Target, code: str, reason: str, *, counted: bool = True) -> None:
        """A record not resent by this job, and why; ``counted`` for one of its ``total``."""
        if counted:
            self.skipped += 1
        if len(self.skips) < MAX_FAILURES_SHOWN:
            self.skips.append({"business_key": masked_target(t.business_key),
                               "from": t.correlation_id, "code": code, "reason": reason})

    def fail(self, t: Target, code: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_FAILURES_SHOWN:
            self.failures.append({"business_key": masked_target(t.business_key),
                                  "from": t.correlation_id, "code": code,
                                  "reason": mask_text(reason)[:300]})


class ResendJobs:
    """The bulk jobs of one API (in memory) and the tasks running them."""

    def __init__(self, claims: ResendClaims | None = None) -> None:
        self.jobs: dict[str, ResendJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.claims: ResendClaims = claims or MemoryResendClaims()
        """Used when ``start`` is given none (one process only: the hub passes Redis's)."""

    def running(self) -> int:
        return sum(1 for j in self.jobs.values() if j.state == "running")

    def get(self, job_id: str) -> ResendJob | None:
        return self.jobs.get(job_id)

    def add(self, job: ResendJob) -> None:
        self.jobs[job.job_id] = job
        finished = [k for k, j in self.jobs.items() if j.state != "running"]
        for key in finished[:max(0, len(self.jobs) - MAX_JOBS_KEPT)]:
            del self.jobs[key]

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # asyncio keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel running jobs (tests, shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def start(self, body: BulkResendRequest, actor: Actor, *, resender: Resender,
                    engine: AsyncEngine, claims: ResendClaims | None = None) -> ResendJob:
        """Select the targets, claim them, register and audit the job, and run it in the
        background. ``ClaimsUnavailable`` when the claims cannot be taken (nothing runs)."""
        if self.running() >= MAX_RUNNING_JOBS:
            raise Busy
        claims = claims or self.claims
        targets = await select_resend_targets(engine, body.filter, body.limit, body.subject)
        job_id = new_id()
        keys = {claim_key(body.subject, t.business_key): t for t in targets}
        try:
            others = await claims.claim(list(keys), job_id, CLAIM_TTL_S)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await claims.release(list(keys), job_id)
            raise ClaimsUnavailable(exc) from exc
        mine = {k: t for k, t in keys.items() if k not in others}
        job = ResendJob(job_id=job_id, actor=actor.user, role=actor.role, action=body.action,
                        reason=body.reason, filter=body.filter.model_dump(mode="json"),
                        total=len(mine), in_other_job=len(others))
        for key, other in others.items():
            job.skip(keys[key], "IN_OTHER_JOB", f"in another job {other}", counted=False)
        self.add(job)
        await resender.record(actor, f"resend.{body.subject}.bulk", job.job_id,
                              {"reason": body.reason, "filter": job.filter,
                               "action": body.action, "total": job.total,
                               "in_other_job": job.in_other_job}, "started")
        self.spawn(run_job(job, list(mine.values()), body, resender,
                           claims=claims, keys=list(mine), engine=engine))
        return job


async def run_job(job: ResendJob, targets: Sequence[Target], body: BulkResendRequest,
                  resender: Resender, *, claims: ResendClaims | None = None,
                  keys: Sequence[str] = (), engine: AsyncEngine | None = None) -> None:
    """Resend each target at ``body.rate_per_s``, holding the job's claims on ``keys``
    (renewed while it runs, released at its end); with ``engine``, a target resent since
    it was selected is skipped. The job's end is audited whatever it is."""
    loop = asyncio.get_running_loop()
    start, interval = loop.time(), 1.0 / body.rate_per_s
    keeper = loop.create_task(_keep_claims(claims, keys, job.job_id)) \
        if claims is not None and keys else None
    end: Literal["finished", "cancelled", "crashed"] = "crashed"
    try:
        for i, t in enumerate(targets):
            await asyncio.sleep(max(0.0, start + i * interval - loop.time()))
            await _item(job, t, body, resender, engine)
        end = "finished"
    except asyncio.CancelledError:
        end = "cancelled"
        raise
    except Exception:
        log.exception("resend job %s crashed", job.job_id)
    finally:
        if keeper is not None:  # released before the job shows as ended: a job started
            keeper.cancel()     # after it has ended finds its records free
            await asyncio.shield(_release(claims, keys, job.job_id))  # type: ignore[arg-type]
        job.finished_at = datetime.now(UTC)
        job.state = end
        await asyncio.shield(resender.record(
            Caller(job.actor, job.role), f"resend.{body.subject}.bulk", job.job_id,
            {"total": job.total, "done": job.done, "failed": job.failed,
             "skipped": job.skipped, "in_other_job": job.in_other_job}, job.state))


async def _keep_claims(claims: ResendClaims, keys: Sequence[str], owner: str) -> None:
    """Renew the job's claims every third of their life until cancelled; a failed renewal
    is logged and tried again (the claims live a whole ``CLAIM_TTL_S`` meanwhile)."""
    while True:
        await asyncio.sleep(CLAIM_TTL_S / 3)
        try:
            await claims.renew(keys, owner, CLAIM_TTL_S)
        except Exception:
            log.warning("renewing the claims of resend job %s failed", owner, exc_info=True)


async def _release(claims: ResendClaims, keys: Sequence[str], owner: str) -> None:
    try:
        await claims.release(keys, owner)
    except Exception:  # they expire within CLAIM_TTL_S
        log.warning("releasing the claims of resend job %s failed", owner, exc_info=True)


async def _item(job: ResendJob, t: Target, body: BulkResendRequest,
                resender: Resender, engine: AsyncEngine | None = None) -> None:
    try:
        request = body.item(t)
    except ValidationError as exc:
        job.fail(t, "VALIDATION", ValidationFailed.of(exc).reason)
        return
    if engine is not None:
        try:
            latest = await still_latest(engine, t, body.subject)
        except Exception as exc:  # the database is down: do not guess, count it
            job.fail(t, type(exc).__name__, str(exc))
            return
        if not latest:
            job.skip(t, "RESENT_SINCE", "resent since it was selected")
            return
    try:
        out = await resender.resend(request, Caller(job.actor, job.role))
    except HubError as exc:
        job.fail(t, exc.public_code, exc.reason)
        return
    except Exception as exc:  # broker or database down: count it, go on
        job.fail(t, type(exc).__name__, str(exc))
        return
    job.done += 1
    job.correlation_ids.append(out.message.correlation_id)
