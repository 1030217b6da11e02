"""Admin API for 补发 (F6): resend one record, or many at a bounded rate.

    POST /admin/resend/employee       职工信息税务补发: one person (H1102) -> 202
    POST /admin/resend/record         单位/灵活/居民信息税务补发: one record (H1103) -> 202
    POST /admin/resend/employee/bulk  records of a subject picked from the transactions
                                      table (``subject``: employee, unit, flexible,
                                      resident) -> 202 + job
    GET  /admin/resend/jobs/{job_id}  a bulk job's progress: total, done, failed, pending

A resend reads core's current state (H1102), builds the message with
``services.resend.resend_messages``, publishes it with a broker confirm, and
records a new transaction (source ``resend``, status ``received``) with who
asked and why in the interaction log. Each resend is a new business
transaction and a new serial at tax: see ``routes/resend.py`` for why that is
intended and what it means for duplicates.

Bulk selection: employee transactions (``tax.employee.enroll``/``.stop``) in
the given status (and type, and ``created_at >= since``) that are still the
*latest* employee transaction of their person (``business_key`` =
``unit_credit_code:id_number``), one per person. A person resent once has a
newer transaction, so running the same bulk request again does not resend
them a second time.

Jobs live in this process's memory only: they are lost on restart and not
visible from other replicas; the last ``MAX_JOBS_KEPT`` are kept. Every item
is journaled, so an interrupted job can be judged from the transactions table
and simply re-run (see the selection rule above). At most ``MAX_RUNNING_JOBS``
run at once.

``require(*roles)`` (optional) is a FastAPI dependency factory: when given,
every endpoint needs role ``caseworker`` and the principal it returns names
the actor. ``audit`` (optional) gets one ``record`` per resend, per bulk start
and per bulk end: who, role, action, target (ID number masked), why, outcome.
An audit that fails is logged and does not undo a resend already published;
a published resend's actor, reason and resend id are also in the interaction
log (hop ``admin.resend``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal, Protocol

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from contracts.employee import ResendRequest, check_stop_date, check_stop_reason
from contracts.envelope import HubMessage, new_id
from contracts.errors import BusinessRejected, HubError, PermanentError, ValidationFailed
from contracts.masking import mask_id, mask_text
from contracts.messages import ENROLL, STOP
from contracts.resend import RecordResendRequest
from contracts.taxcat import ops_of
from services.deps import Deps
from services.resend import RESEND_SOURCE, record_resend_message, resend_messages
from storage.journal import LogEntry, TxnUpdate
from storage.models import Transaction

__all__ = ["ROLE", "Audit", "BulkResendRequest", "ResendFilter", "ResendJob", "ResendJobs",
           "Target", "resend_router", "select_resend_targets"]

log = logging.getLogger("hub.resend")

ROLE: Final = "caseworker"
EMPLOYEE_TYPES: Final = (ENROLL, STOP)
SUBJECT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "employee": EMPLOYEE_TYPES,
    **{subject: tuple(o.msg_type for o in ops_of("submit", subject))
       for subject in ("unit", "flexible", "resident")},
}
"""The transaction types a bulk resend of each subject selects from."""
MAX_JOBS_KEPT: Final = 100
MAX_RUNNING_JOBS: Final = 2
MAX_FAILURES_SHOWN: Final = 100

TxnStatus = Literal["received", "submitted", "retrying", "accepted", "rejected", "dead",
                    "delivered"]


class Audit(Protocol):
    """Where resends are audited (e.g. ``storage.audit.AuditLog``)."""

    async def record(self, actor: str, role: str, action: str, target: str,
                     detail: dict[str, Any], outcome: str) -> object: ...


class ResendFilter(BaseModel):
    """Which transactions a bulk resend picks (employee types only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: TxnStatus
    type: str | None = Field(default=None, description="one of the subject's message types")
    since: AwareDatetime | None = Field(default=None, description="created at or after")


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


@dataclass(frozen=True)
class Target:
    """One person to resend, and the transaction that picked them."""

    correlation_id: str
    type: str
    business_key: str


async def select_resend_targets(engine: AsyncEngine, f: ResendFilter, limit: int,
                                subject: str = "employee") -> list[Target]:
    """Transactions matching ``f`` that are their record's latest, oldest first, one each."""
    types = SUBJECT_TYPES[subject]
    newer = aliased(Transaction)
    q = (select(Transaction.correlation_id, Transaction.type, Transaction.business_key)
         .where(Transaction.status == f.status,
                Transaction.type.in_((f.type,) if f.type else types),
                ~exists().where(newer.business_key == Transaction.business_key,
                                newer.type.in_(types),
                                newer.created_at > Transaction.created_at))
         .order_by(Transaction.created_at).limit(limit))
    if f.since is not None:
        # Stored in UTC (SQLite keeps no offset): compare in UTC.
        q = q.where(Transaction.created_at >= f.since.astimezone(UTC))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    seen: set[str] = set()
    out: list[Target] = []
    for cid, type_, key in rows:
        if key not in seen:
            seen.add(key)
            out.append(Target(cid, type_, key))
    return out


@dataclass
class ResendJob:
    """Progress of one bulk resend; ``done`` = published, ``failed`` = not resent."""

    job_id: str
    actor: str
    role: str
    action: str
    reason: str
    filter: dict[str, Any]
    total: int
    done: int = 0
    failed: int = 0
    state: Literal["running", "finished", "cancelled", "crashed"] = "running"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    correlation_ids: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "state": self.state, "action": self.action,
            "actor": self.actor, "reason": self.reason, "filter": self.filter,
            "total": self.total, "done": self.done, "failed": self.failed,
            "pending": self.total - self.done - self.failed,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "correlation_ids": list(self.correlation_ids), "failures": list(self.failures),
        }


class ResendJobs:
    """In-memory registry of bulk jobs and their tasks (one per ``resend_router``)."""

    def __init__(self) -> None:
        self.jobs: dict[str, ResendJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def running(self) -> int:
        return sum(1 for j in self.jobs.values() if j.state == "running")

    def add(self, job: ResendJob) -> None:
        self.jobs[job.job_id] = job
        finished = [k for k, j in self.jobs.items() if j.state != "running"]
        for key in finished[:max(0, len(self.jobs) - MAX_JOBS_KEPT)]:
            del self.jobs[key]

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # asyncio keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel running jobs (tests, shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _who(principal: object) -> tuple[str, str]:
    """(actor, role) of the caller: the principal's user and role where known."""
    def attr(*names: str) -> str:
        for name in names:
            value = (principal.get(name) if isinstance(principal, Mapping)
                     else getattr(principal, name, None))
            if isinstance(value, str) and value:
                return value
        return ""

    if isinstance(principal, str):
        return principal or "anonymous", ROLE
    return attr("user", "actor", "username", "name", "sub") or "anonymous", attr("role") or ROLE


async def _no_principal() -> None:
    return None


def _target(business_key: str) -> str:
    """An audit target without the full ID number."""
    unit, _, id_number = business_key.partition(":")
    return f"{unit}:{mask_id(id_number)}" if id_number else mask_text(business_key)


def _error_body(exc: HubError) -> dict[str, Any]:
    code = exc.reason_code if isinstance(exc, BusinessRejected) else exc.code
    body: dict[str, Any] = {"code": code, "reason": exc.reason}
    if isinstance(exc, ValidationFailed):
        body["errors"] = [{"field": f, "reason": r} for f, r in exc.errors]
    return body


def _status_for(exc: HubError) -> int:
    if isinstance(exc, (ValidationFailed, BusinessRejected)):
        return 422  # not in core, or a request core's state refuses
    return 502 if isinstance(exc, PermanentError) else 503


AnyResend = ResendRequest | RecordResendRequest


def _business_key(request: AnyResend) -> str:
    if isinstance(request, ResendRequest):
        return request.business_key
    return request.key if request.subject == "unit" else request.key.upper()


def _subject(request: AnyResend) -> str:
    return "employee" if isinstance(request, ResendRequest) else request.subject


async def _resend_one(deps: Deps, request: AnyResend, *, actor: str,
                      resend_id: str) -> HubMessage:
    """Read core, build, publish (confirmed), then journal the new transaction."""
    if isinstance(request, ResendRequest):
        current = await deps.core.get_employee(request.id_number, request.unit_credit_code)
        msg = resend_messages(request, current, resend_id=resend_id, actor=actor)
        key_detail = {"id_number": request.id_number}
    else:
        record = await deps.core.get_record(request.subject, request.record_key)
        msg = record_resend_message(request, record, resend_id=resend_id, actor=actor)
        key_detail = {"key": request.key, "subject": request.subject}
    await deps.publisher.publish(msg)
    detail = {"resend_id": resend_id, "actor": actor, "reason": request.reason,
              "action": request.action, **key_detail}
    if request.stop_date is not None:
        detail["stop_date"] = request.stop_date.isoformat()
    business_key = str(msg.payload.get("unit_credit_code", "")) + ":" + str(
        msg.payload.get("id_number", "")) if isinstance(request, ResendRequest) else \
        _business_key(request)
    await deps.journal.write(
        LogEntry(message_id=msg.message_id, correlation_id=msg.correlation_id, type=msg.type,
                 partner="hub", direction="in", hop="admin.resend", outcome="ok",
                 detail=detail),
        TxnUpdate(msg.correlation_id, msg.type, business_key, RESEND_SOURCE,
                  "received", only_if_new=True))
    return msg


def resend_router(deps: Deps, *, audit: Audit | None = None,
                  require: Callable[..., Any] | None = None,
                  jobs: ResendJobs | None = None) -> APIRouter:
    """The resend endpoints; ``require``/``audit`` as in the module docstring.

    Pass ``jobs`` to hold the job registry yourself (e.g. to ``aclose`` it at shutdown).
    """
    r = APIRouter(tags=["admin: resend"])
    jobs = jobs if jobs is not None else ResendJobs()
    principal_dep = Depends(require(ROLE) if require is not None else _no_principal)

    async def record(who: tuple[str, str], action: str, target: str, detail: dict[str, Any],
                     outcome: str) -> None:
        if audit is None:
            return
        try:
            await audit.record(who[0], who[1], action, target, detail, outcome)
        except Exception:  # the resend stands; who/why is also in the interaction log
            log.exception("auditing %s of %s (%s) failed", action, target, outcome)

    async def attempt(request: AnyResend, who: tuple[str, str], resend_id: str
                      ) -> HubMessage | HubError:
        """One audited resend; a HubError is returned, anything else raised (after auditing)."""
        action = f"resend.{_subject(request)}.{request.action}"
        target = _target(_business_key(request))
        why: dict[str, Any] = {"reason": request.reason, "resend_id": resend_id}
        if request.stop_date is not None:
            why |= {"stop_date": request.stop_date.isoformat(), "stop_reason":
                    request.stop_reason}
        try:
            msg = await _resend_one(deps, request, actor=who[0], resend_id=resend_id)
        except HubError as exc:
            await record(who, action, target, why | _error_body(exc), "rejected"
                         if isinstance(exc, PermanentError) else "failed")
            return exc
        except Exception as exc:
            await record(who, action, target, why | {"error": type(exc).__name__}, "failed")
            raise
        await record(who, action, target, why | {"correlation_id": msg.correlation_id},
                     "accepted")
        return msg

    async def answer(body: AnyResend, principal: Any) -> JSONResponse:
        resend_id = new_id()
        out = await attempt(body, _who(principal), resend_id)
        if isinstance(out, HubError):
            return JSONResponse({"detail": _error_body(out)}, status_code=_status_for(out))
        return JSONResponse({"resend_id": resend_id, "correlation_id": out.correlation_id,
                             "serial": out.message_id, "type": out.type}, status_code=202)

    @r.post("/admin/resend/employee", status_code=202,
            summary="职工信息税务补发: resend one employee from core's current state")
    async def resend_employee(body: ResendRequest,
                              principal: Any = principal_dep) -> JSONResponse:
        return await answer(body, principal)

    @r.post("/admin/resend/record", status_code=202,
            summary="单位/灵活/居民信息税务补发: resend one record from core's current state")
    async def resend_record(body: RecordResendRequest,
                            principal: Any = principal_dep) -> JSONResponse:
        return await answer(body, principal)

    @r.post("/admin/resend/employee/bulk", status_code=202,
            summary="Bulk 补发 of employees picked by transaction status, at a bounded rate")
    async def resend_bulk(body: BulkResendRequest,
                          principal: Any = principal_dep) -> JSONResponse:
        if jobs.running() >= MAX_RUNNING_JOBS:
            return JSONResponse({"detail": {"code": "BUSY", "reason": f"{MAX_RUNNING_JOBS} "
                                            "resend jobs are running; try again later"}},
                                status_code=429)
        who = _who(principal)
        targets = await select_resend_targets(deps.journal.engine, body.filter, body.limit,
                                              body.subject)
        job = ResendJob(job_id=new_id(), actor=who[0], role=who[1], action=body.action,
                        reason=body.reason, filter=body.filter.model_dump(mode="json"),
                        total=len(targets))
        jobs.add(job)
        await record(who, f"resend.{body.subject}.bulk", job.job_id,
                     {"reason": body.reason, "filter": job.filter, "action": body.action,
                      "total": job.total}, "started")
        jobs.spawn(run_job(job, targets, body))
        return JSONResponse({"job_id": job.job_id, "total": job.total, "state": job.state},
                            status_code=202)

    async def run_job(job: ResendJob, targets: Sequence[Target],
                      body: BulkResendRequest) -> None:
        loop = asyncio.get_running_loop()
        start, interval = loop.time(), 1.0 / body.rate_per_s
        try:
            for i, t in enumerate(targets):
                await asyncio.sleep(max(0.0, start + i * interval - loop.time()))
                await bulk_item(job, t, body)
            job.state = "finished"
        except asyncio.CancelledError:
            job.state = "cancelled"
            raise
        except Exception:
            log.exception("resend job %s crashed", job.job_id)
            job.state = "crashed"
        finally:
            job.finished_at = datetime.now(UTC)
            await asyncio.shield(record(
                (job.actor, job.role), f"resend.{body.subject}.bulk", job.job_id,
                {"total": job.total, "done": job.done, "failed": job.failed}, job.state))

    async def bulk_item(job: ResendJob, t: Target, body: BulkResendRequest) -> None:
        def fail(code: str, reason: str) -> None:
            job.failed += 1
            if len(job.failures) < MAX_FAILURES_SHOWN:
                job.failures.append({"business_key": _target(t.business_key),
                                     "from": t.correlation_id, "code": code,
                                     "reason": mask_text(reason)[:300]})

        unit, _, id_number = t.business_key.partition(":")
        request: AnyResend
        try:
            if body.subject == "employee":
                request = ResendRequest(id_number=id_number, unit_credit_code=unit,
                                        action=body.action, stop_date=body.stop_date,
                                        stop_reason=body.stop_reason, reason=body.reason)
            else:
                request = RecordResendRequest(
                    subject=body.subject, key=t.business_key.rpartition(":")[2],
                    action=body.action, stop_date=body.stop_date,
                    stop_reason=body.stop_reason, reason=body.reason)
        except ValidationError as exc:
            fail("VALIDATION", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                         for e in exc.errors()))
            return
        try:
            out = await attempt(request, (job.actor, job.role), new_id())
        except Exception as exc:  # broker or database down: count it, go on
            fail(type(exc).__name__, str(exc))
            return
        if isinstance(out, HubError):
            fail(str(_error_body(out)["code"]), out.reason)
        else:
            job.done += 1
            job.correlation_ids.append(out.correlation_id)

    @r.get("/admin/resend/jobs/{job_id}", summary="Progress of a bulk resend job")
    async def resend_job(job_id: str, principal: Any = principal_dep) -> JSONResponse:
        job = jobs.jobs.get(job_id)
        if job is None:
            return JSONResponse({"detail": f"no resend job {job_id} (jobs are kept in memory "
                                           "of the process that ran them)"}, status_code=404)
        return JSONResponse(job.view())

    return r
