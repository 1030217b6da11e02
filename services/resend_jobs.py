"""Bulk 补发: records picked from the transactions table, resent one by one at a bounded rate.

The selection is ``services.resend_targets``; each item is one audited resend
(``services.resender``). A job's start and end are audited too (action
``resend.<subject>.bulk``, target the job id).

Jobs are durable (``services.job_runner``, kind ``resend.bulk``): the job row holds the
request and the correlation ids of the transactions that picked its records (no personal
data: the records are read back from the transactions table), the checkpoint the index of
the next record. A hub stopped or killed mid-job is resumed by the next start (or by
another replica once the lease has expired), from the checkpoint; a record handled since
the last checkpoint shows a newer transaction and is skipped as ``RESENT_SINCE``, so each
record is resent once. Jobs can be cancelled (they stop before the next record) and are
listed with the others (``GET /admin/jobs``). At most ``MAX_RUNNING_JOBS`` run or wait at
once, over every hub process.

Jobs exclude each other per record, across hub processes (``services.resend_claims``):
a job claims the records it selected before it resends any and holds them while it
runs (the claims' owner is the job's id, so a resumed job takes its own claims back).
A record another running job holds is left to that job and reported as
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.employee import ResendRequest, check_stop_date, check_stop_reason
from contracts.envelope import new_id
from contracts.errors import HubError, ValidationFailed
from contracts.masking import mask_text
from contracts.resend import RecordResendRequest
from services.audit import Actor, Caller
from services.job_runner import JobRunner
from services.jobs import JobContext, JobView
from services.resend_claims import CLAIM_TTL_S, MemoryResendClaims, ResendClaims, claim_key
from services.resend_targets import (
    SUBJECT_TYPES,
    ResendFilter,
    Target,
    select_resend_targets,
    still_latest,
)
from services.resender import AnyResend, Resender, masked_target
from storage.models import Transaction

__all__ = ["KIND", "MAX_FAILURES_SHOWN", "MAX_RUNNING_JOBS", "BulkResendRequest", "Busy",
           "ClaimsUnavailable", "ResendJob", "ResendJobs", "run_job", "targets_of"]

log = logging.getLogger("hub.resend")

KIND: Final = "resend.bulk"
"""The durable job kind (``services.job_runner``)."""
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


_STATES: Final[Mapping[str, Literal["running", "finished", "cancelled", "crashed"]]] = {
    "queued": "running", "running": "running", "done": "finished", "cancelled": "cancelled",
    "failed": "crashed"}
"""The durable job's state as this API has always named it (queued counts as running)."""


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
    subject: str = "employee"

    @classmethod
    def of(cls, v: JobView) -> ResendJob:
        """The view of a durable ``resend.bulk`` job (lists from its report, once ended)."""
        p, r = v.params, v.report
        return cls(job_id=v.id, actor=v.started_by, role=v.role,
                   action=str(p.get("action", "")), reason=str(p.get("reason", "")),
                   filter=dict(p.get("filter") or {}), total=v.total or 0, done=v.done,
                   failed=v.failed, skipped=v.skipped,
                   in_other_job=int(p.get("in_other_job", 0)), state=_STATES[v.state],
                   started_at=v.created_at, finished_at=v.updated_at if v.finished else None,
                   correlation_ids=list(r.get("correlation_ids") or []),
                   failures=list(r.get("failures") or []), skips=list(r.get("skips") or []),
                   subject=str(p.get("subject", "employee")))

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

    def checkpoint(self, next_index: int) -> dict[str, Any]:
        """What a resumed run needs to go on and to end with the whole report."""
        return {"next": next_index, "done": self.done, "failed": self.failed,
                "skipped": self.skipped, "correlation_ids": self.correlation_ids,
                "failures": self.failures, "skips": self.skips}

    def report(self) -> dict[str, Any]:
        return {"total": self.total, "done": self.done, "failed": self.failed,
                "skipped": self.skipped, "in_other_job": self.in_other_job,
                "correlation_ids": self.correlation_ids, "failures": self.failures,
                "skips": self.skips}


async def targets_of(engine: AsyncEngine, correlation_ids: Sequence[str]) -> list[Target]:
    """The targets a job picked, read back by their transactions' ids, in the job's order
    (the job row keeps ids, not the persons' keys). A transaction that is gone (not
    expected: they are not deleted) comes back without a key, and fails as VALIDATION."""
    found: dict[str, Target] = {}
    ids = list(correlation_ids)
    async with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            q = (select(Transaction.correlation_id, Transaction.type, Transaction.business_key)
                 .where(Transaction.correlation_id.in_(ids[i:i + 500])))
            found.update({cid: Target(cid, t, k) for cid, t, k in (await conn.execute(q)).all()})
    return [found.get(c) or Target(c, "", "") for c in ids]


class ResendJobs:
    """Bulk 补发 on a durable runner: ``start`` selects and claims, the ``resend.bulk``
    handler (``bind``) resends. Without a runner, one of its own in memory (tests)."""

    def __init__(self, claims: ResendClaims | None = None, *,
                 runner: JobRunner | None = None) -> None:
        self._runner = runner
        self.claims: ResendClaims = claims or MemoryResendClaims()
        """Used when ``start`` is given none (one process only: the hub passes Redis's)."""

    @property
    def runner(self) -> JobRunner:
        if self._runner is None:
            self._runner = JobRunner.memory()
        return self._runner

    def bind(self, resender: Resender, engine: AsyncEngine,
             claims: ResendClaims | None = None) -> None:
        """Register the ``resend.bulk`` handler with the parts it resends through (the hub
        does it when it is wired, so that a job left running is resumed at start)."""
        claims = claims or self.claims

        async def handle(ctx: JobContext) -> Mapping[str, Any]:
            return await resume_job(ctx, resender, engine, claims)

        self.runner.register(KIND, handle)

    async def get(self, job_id: str) -> ResendJob | None:
        view = await self.runner.get(job_id)
        return None if view is None or view.kind != KIND else ResendJob.of(view)

    async def aclose(self) -> None:
        """Stop running jobs here (tests, shutdown); they resume on the next start."""
        await self.runner.close()

    async def start(self, body: BulkResendRequest, actor: Actor, *, resender: Resender,
                    engine: AsyncEngine, claims: ResendClaims | None = None) -> ResendJob:
        """Select the targets, claim them, store and audit the job, and run it in the
        background. ``Busy`` over ``MAX_RUNNING_JOBS``; ``ClaimsUnavailable`` when the
        claims cannot be taken (nothing runs)."""
        runner = self.runner
        if KIND not in runner.kinds():
            self.bind(resender, engine, claims)
        if await runner.active(KIND) >= MAX_RUNNING_JOBS:
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
        mine = [t for k, t in keys.items() if k not in others]
        job = ResendJob(job_id=job_id, actor=actor.user, role=actor.role, action=body.action,
                        reason=body.reason, filter=body.filter.model_dump(mode="json"),
                        total=len(mine), in_other_job=len(others), subject=body.subject)
        for key, other in others.items():
            job.skip(keys[key], "IN_OTHER_JOB", f"in another job {other}", counted=False)
        shown = {"subject": body.subject, "action": body.action, "reason": body.reason,
                 "filter": job.filter, "rate_per_s": body.rate_per_s, "limit": body.limit,
                 "in_other_job": job.in_other_job}
        try:
            view = await runner.start(
                KIND, {"request": body.model_dump(mode="json"),
                       "targets": [t.correlation_id for t in mine],
                       "in_other_job": job.in_other_job}, actor,
                job_id=job_id, total=job.total, checkpoint=job.checkpoint(0), shown=shown)
        except BaseException:
            with contextlib.suppress(Exception):
                await claims.release(list(keys), job_id)
            raise
        await resender.record(actor, f"resend.{body.subject}.bulk", job_id,
                              {"reason": body.reason, "filter": job.filter,
                               "action": body.action, "total": job.total,
                               "in_other_job": job.in_other_job}, "started")
        job.state = _STATES[view.state]
        return job


async def resume_job(ctx: JobContext, resender: Resender, engine: AsyncEngine,
                     claims: ResendClaims) -> dict[str, Any]:
    """The ``resend.bulk`` handler: the job's records from its checkpoint on. A resumed run
    claims each record again under the job's id before it (one another job holds now is
    that job's: skipped as ``IN_OTHER_JOB``)."""
    p, cp = ctx.params, ctx.checkpoint
    body = BulkResendRequest.model_validate(p["request"])
    ids = list(p["targets"])
    start = int(cp.get("next", 0))
    targets = await targets_of(engine, ids[start:])
    who = ctx.actor
    job = ResendJob(job_id=ctx.job_id, actor=who.user, role=who.role, action=body.action,
                    reason=body.reason, filter=body.filter.model_dump(mode="json"),
                    total=len(ids), done=int(cp.get("done", 0)),
                    failed=int(cp.get("failed", 0)), skipped=int(cp.get("skipped", 0)),
                    in_other_job=int(p.get("in_other_job", 0)),
                    correlation_ids=list(cp.get("correlation_ids") or []),
                    failures=list(cp.get("failures") or []), skips=list(cp.get("skips") or []),
                    subject=body.subject)
    await run_job(job, targets, body, resender, claims=claims,
                  keys=[claim_key(body.subject, t.business_key) for t in targets],
                  engine=engine, ctx=ctx, offset=start, reclaim=start > 0)
    return job.report()


async def run_job(job: ResendJob, targets: Sequence[Target], body: BulkResendRequest,
                  resender: Resender, *, claims: ResendClaims | None = None,
                  keys: Sequence[str] = (), engine: AsyncEngine | None = None,
                  ctx: JobContext | None = None, offset: int = 0,
                  reclaim: bool = False) -> None:
    """Resend each target at ``body.rate_per_s``, holding the job's claims on ``keys``
    (renewed while it runs, released at its end); with ``engine``, a target resent since
    it was selected is skipped. With ``ctx`` (a durable job): progress and the checkpoint
    (``offset`` + index of the next target) after each record, a cancel stops it before
    the next one, and a stop of the hub leaves it to be resumed (claims kept, no end
    audited); ``reclaim`` (a resumed run) claims each record again just before it. The
    job's end is audited whatever else it is."""
    loop = asyncio.get_running_loop()
    start, interval = loop.time(), 1.0 / body.rate_per_s
    keeper = loop.create_task(_keep_claims(claims, keys, job.job_id)) \
        if claims is not None and keys else None
    end: Literal["finished", "cancelled", "crashed"] = "crashed"
    stopped = False
    try:
        for i, t in enumerate(targets):
            if ctx is not None and await ctx.cancelled():
                end = "cancelled"
                break
            await asyncio.sleep(max(0.0, start + i * interval - loop.time()))
            before = (job.done, job.failed, job.skipped)
            if not reclaim or await _reclaim(job, t, claims, keys[i]):
                await _item(job, t, body, resender, engine)
            if ctx is not None:
                await ctx.advance(done=job.done - before[0], failed=job.failed - before[1],
                                  skipped=job.skipped - before[2],
                                  checkpoint=job.checkpoint(offset + i + 1))
        else:
            end = "finished"
    except asyncio.CancelledError:
        end, stopped = "cancelled", ctx is not None
        raise
    except Exception:
        log.exception("resend job %s crashed", job.job_id)
        if ctx is not None:
            raise
    except BaseException:  # LeaseLost: another process runs this job (and its claims) now
        stopped = True
        raise
    finally:
        if keeper is not None:
            keeper.cancel()
        if not stopped:  # released before the job shows as ended: a job started after it
            if keeper is not None:  # has ended finds its records free
                await asyncio.shield(_release(claims, keys, job.job_id))  # type: ignore[arg-type]
            job.finished_at = datetime.now(UTC)
            job.state = end
            await asyncio.shield(resender.record(
                Caller(job.actor, job.role), f"resend.{body.subject}.bulk", job.job_id,
                {"total": job.total, "done": job.done, "failed": job.failed,
                 "skipped": job.skipped, "in_other_job": job.in_other_job}, job.state))


async def _reclaim(job: ResendJob, t: Target, claims: ResendClaims | None,
                   key: str) -> bool:
    """Whether a resumed job holds ``t`` again (else it is counted, as another job's or as
    failed when the claims cannot be taken)."""
    if claims is None:
        return True
    try:
        others = await claims.claim([key], job.job_id, CLAIM_TTL_S)
    except Exception as exc:
        job.fail(t, type(exc).__name__, str(exc))
        return False
    if key in others:
        job.skip(t, "IN_OTHER_JOB", f"in another job {others[key]}")
        return False
    return True


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
