"""Admin API for 补发 (F6): resend one record, or many at a bounded rate.

    POST /admin/resend/employee       职工信息税务补发: one person (H1102) -> 202
    POST /admin/resend/record         单位/灵活/居民信息税务补发: one record (H1103) -> 202
                                      (a unit's ``all``: basic, enrollment, stop if stopped)
    POST /admin/resend/flexible/detect  灵活补发 detection: core vs tax per flexible worker,
                                      report the gaps and (``apply``) resend them
    POST /admin/resend/employee/bulk  records of a subject picked from the transactions
                                      table (``subject``: employee, unit, flexible,
                                      resident) -> 202 + job; records another running
                                      job holds are left to it (``in_other_job``)
    GET  /admin/resend/jobs/{job_id}  a bulk job's progress: total, done, failed, pending
                                      (also GET /admin/jobs/{id}, cancel: api.jobs)

Every endpoint needs role ``caseworker``; the principal names the actor. The
work is ``services.resender`` (one audited resend) and
``services.resend_jobs`` (bulk jobs, durable: ``services.job_runner``); the selection
rule is ``services.resend_targets``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caseworker, ResendService, State
from api.problems import hub_problem, problem
from contracts.clock import today_beijing
from contracts.employee import ResendRequest
from contracts.errors import BusinessRejected, HubError, PermanentError, ValidationFailed
from contracts.messages import partner_serial
from contracts.resend import RecordResendRequest
from services.audit import Actor
from services.flexible_gaps import find_gaps
from services.resend_jobs import BulkResendRequest, Busy, ClaimsUnavailable, ResendJobs
from services.resender import ANONYMOUS, AnyResend, Resender, error_detail

__all__ = ["router"]

router = APIRouter(tags=["admin: resend"])


async def _jobs(state: State) -> ResendJobs:
    """The hub's durable jobs (``Deps.jobs``, the handler bound at wiring), else the app's
    own (``ApiState.resend_jobs``: an app built without a runner)."""
    runner = state.deps.jobs
    if runner is None:
        return state.resend_jobs
    return ResendJobs(state.deps.resend_claims, runner=runner)


Jobs = Annotated[ResendJobs, Depends(_jobs)]


def _status_for(exc: HubError) -> int:
    if isinstance(exc, (ValidationFailed, BusinessRejected)):
        return 422  # not in core, or a request core's state refuses
    return 502 if isinstance(exc, PermanentError) else 503


async def _answer(resender: Resender, body: AnyResend, actor: Actor) -> JSONResponse:
    try:
        out = await resender.resend(body, actor)
    except HubError as exc:
        return hub_problem(exc, _status_for(exc))
    msg = out.message
    answer: dict[str, Any] = {"resend_id": out.resend_id, "correlation_id": msg.correlation_id,
                              "serial": partner_serial(msg), "type": msg.type}
    if out.more:  # a unit's all: every step, in the order tax gets them
        answer["steps"] = [{"correlation_id": m.correlation_id, "serial": partner_serial(m),
                            "type": m.type} for m in out.messages]
    return JSONResponse(answer, status_code=202)


@router.post("/admin/resend/employee", status_code=202,
             summary="职工信息税务补发: resend one employee from core's current state")
async def resend_employee(body: ResendRequest, principal: Caseworker,
                          resender: ResendService) -> JSONResponse:
    return await _answer(resender, body, principal or ANONYMOUS)


@router.post("/admin/resend/record", status_code=202,
             summary="单位/灵活/居民信息税务补发: resend one record from core's current state")
async def resend_record(body: RecordResendRequest, principal: Caseworker,
                        resender: ResendService) -> JSONResponse:
    return await _answer(resender, body, principal or ANONYMOUS)


@router.post("/admin/resend/employee/bulk", status_code=202,
             summary="Bulk 补发 of employees picked by transaction status, at a bounded rate")
async def resend_bulk(body: BulkResendRequest, principal: Caseworker, resender: ResendService,
                      jobs: Jobs, state: State) -> JSONResponse:
    try:
        job = await jobs.start(body, principal or ANONYMOUS, resender=resender,
                               engine=state.deps.journal.engine,
                               claims=state.deps.resend_claims)
    except Busy as exc:
        return problem(429, str(exc), code="BUSY")
    except ClaimsUnavailable as exc:
        return problem(503, str(exc), code="UNAVAILABLE")
    return JSONResponse({"job_id": job.job_id, "total": job.total,
                         "in_other_job": job.in_other_job, "state": job.state},
                        status_code=202)


class FlexibleDetectRequest(BaseModel):
    """灵活信息税务补发 detection: compare core's flexible workers with tax, and resend."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=500, description="why (audited per resend)")
    apply: bool = Field(default=False, description="resend every gap that has an action; "
                                                   "false: only report them")
    limit: int = Field(default=200, ge=1, le=5000, description="core records checked at most")
    stop_date: date | None = Field(default=None, description="停保/终止日期 of the stop and "
                                                             "terminate resends (default today)")


@router.post("/admin/resend/flexible/detect",
             summary="灵活信息税务补发: find flexible workers core and tax disagree about")
async def detect_flexible(body: FlexibleDetectRequest, principal: Caseworker,
                          resender: ResendService, state: State) -> JSONResponse:
    actor = principal or ANONYMOUS
    try:
        checked, gaps = await find_gaps(resender.core, state.deps.tax, limit=body.limit)
    except HubError as exc:
        return hub_problem(exc, _status_for(exc))
    resent: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for g in gaps:
        if not body.apply or g.action is None:
            continue
        request = RecordResendRequest(
            subject="flexible", key=g.id_number, action=g.action, reason=body.reason,
            stop_date=(body.stop_date or today_beijing()) if g.action != "enroll" else None)
        try:
            out = await resender.resend(request, actor)
        except HubError as exc:
            failed.append(g.public() | {"error": error_detail(exc)})
            continue
        resent.append(g.public() | {"resend_id": out.resend_id,
                                    "correlation_id": out.message.correlation_id})
    return JSONResponse({"checked": checked, "gaps": [g.public() for g in gaps],
                         "resent": resent, "failed": failed})


@router.get("/admin/resend/jobs/{job_id}", summary="Progress of a bulk resend job")
async def resend_job(job_id: str, principal: Caseworker, jobs: Jobs) -> JSONResponse:
    job = await jobs.get(job_id[:64])
    if job is None:
        return problem(404, f"no resend job {job_id[:64]}")
    return JSONResponse(job.view())
