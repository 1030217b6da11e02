"""Admin API for durable jobs: list, read, cancel; and a dead-letter retry as a job.

    GET  /admin/jobs                      ?kind=&state=&limit= newest first: the caller's own
                                          jobs; operations and admin see everyone's
    GET  /admin/jobs/{id}                 one job (404 for another's job, unless operations
                                          or admin)
    POST /admin/jobs/{id}/cancel          whoever started it, operations, admin -> 202; a
                                          running job stops at its next item (audited)
    POST /admin/dead-letters/retry-jobs   operations: start a ``dlq.retry`` job (ids, a group
                                          or all; paced) -> 202 + the job

Jobs are ``services.job_runner`` (``Deps.jobs``; 503 on a hub without them). Every
answer's params and report are masked by the runner. Starting and cancelling are audited
(``job.start``, ``job.cancel``; refusals as ``forbidden``); the retry job's own end is
audited by ``services.dead_letters`` as ``dead_letter.retry``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.admin import _ids_fit
from api.auth import Principal
from api.deps import Operator, Reader, State
from api.problems import problem
from contracts.errors import field_errors
from services.dead_letters import RETRY_KIND, RetryJobRequest
from services.job_runner import JobRunner, UnknownKind
from services.jobs import JOB_STATES, JobView

__all__ = ["SEE_ALL", "job_json", "router"]

router = APIRouter(tags=["admin: jobs"])

SEE_ALL: Final = frozenset({"operations", "admin"})
"""Roles that see and cancel every job; others see and cancel their own."""


def job_json(job: JobView) -> dict[str, Any]:
    """A job as the API answers it (params and report already masked)."""
    return {"id": job.id, "kind": job.kind, "state": job.state, "finished": job.finished,
            "started_by": job.started_by, "role": job.role,
            "created_at": job.created_at.isoformat(), "updated_at": job.updated_at.isoformat(),
            "total": job.total, "done": job.done, "failed": job.failed,
            "skipped": job.skipped, "progress": job.progress,
            "cancel_requested": job.cancel_requested, "params": dict(job.params),
            "report": dict(job.report), "error": job.error}


def _runner(state: Any) -> JobRunner | None:
    return getattr(state.deps, "jobs", None)


def _none() -> JSONResponse:
    return problem(503, "this hub has no durable jobs (Deps.jobs is not wired)",
                   code="UNAVAILABLE")


def _sees(who: Principal, job: JobView) -> bool:
    return who.role in SEE_ALL or job.started_by == who.user


@router.get("/admin/jobs", summary="Durable jobs, newest first (the caller's own unless "
                                   "operations or admin)")
async def list_jobs(who: Reader, state: State, kind: str | None = None,
                    job_state: Annotated[str | None, Query(alias="state")] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> JSONResponse:
    jobs = _runner(state)
    if jobs is None:
        return _none()
    if job_state is not None and job_state not in JOB_STATES:
        return problem(422, f"state: must be one of {', '.join(JOB_STATES)}", code="VALIDATION",
                       errors=[{"loc": ["query", "state"], "field": "state",
                                "msg": f"must be one of {', '.join(JOB_STATES)}",
                                "type": "enum"}])
    mine = None if who.role in SEE_ALL else who.user
    listed = await jobs.list(kind=kind, started_by=mine, state=job_state, limit=limit)
    return JSONResponse({"items": [job_json(j) for j in listed]})


@router.get("/admin/jobs/{job_id}", summary="One durable job: progress, params, report")
async def get_job(job_id: str, who: Reader, state: State) -> JSONResponse:
    got = await _visible(job_id, who, state)
    return got if isinstance(got, JSONResponse) else JSONResponse(job_json(got[1]))


async def _visible(job_id: str, who: Principal,
                   state: Any) -> tuple[JobRunner, JobView] | JSONResponse:
    """The job ``who`` may see, or the answer saying there is none (404 for someone else's:
    another user's job is not confirmed to exist)."""
    jobs = _runner(state)
    if jobs is None:
        return _none()
    job = await jobs.get(job_id[:64])
    if job is None or not _sees(who, job):
        return problem(404, f"no job {job_id[:64]}")
    return jobs, job


@router.post("/admin/jobs/{job_id}/cancel", status_code=202,
             summary="Cancel a job: it stops at its next item (starter, operations, admin)")
async def cancel_job(job_id: str, who: Reader, state: State) -> JSONResponse:
    got = await _visible(job_id, who, state)
    if isinstance(got, JSONResponse):
        return got
    jobs, job = got
    target = f"job:{job.id}"
    if who.role == "readonly":
        await state.audit.record(who.user, who.role, "job.cancel", target,
                                 {"kind": job.kind}, "forbidden")
        return problem(403, "a readonly role cannot cancel jobs", code="FORBIDDEN")
    if job.finished:
        await state.audit.record(who.user, who.role, "job.cancel", target,
                                 {"kind": job.kind, "state": job.state}, "conflict")
        return problem(409, f"job {job.id} has ended ({job.state})", code="CONFLICT")
    after = await jobs.cancel(job.id, who)
    await state.audit.record(who.user, who.role, "job.cancel", target,
                             {"kind": job.kind, "started_by": job.started_by}, "ok")
    return JSONResponse(job_json(after or job), status_code=202)


@router.post("/admin/dead-letters/retry-jobs", status_code=202,
             summary="Retry dead letters (ids, a group or all) as a background job",
             description="Paced at `rate_per_s`; progress counts letters sent back; cancel "
                         "stops it before the next letter; a hub restart resumes it after the "
                         "last letter handled. Answers the job (GET /admin/jobs/{id}).")
async def start_retry_job(body: RetryJobRequest, who: Operator, state: State) -> JSONResponse:
    _ids_fit(body.ids)
    jobs = _runner(state)
    if jobs is None:
        return _none()
    params = body.model_dump(mode="json", exclude_none=True)
    try:
        job = await jobs.start(RETRY_KIND, params, who)
    except UnknownKind as exc:
        return problem(503, str(exc), code="UNAVAILABLE")
    except ValidationError as exc:  # the kind's own check (the model above already passed)
        errs = [{"loc": ["body", *f.split(".")], "field": f, "msg": r, "type": "invalid"}
                for f, r in field_errors(exc, default="body")]
        return problem(422, "invalid retry job", code="VALIDATION", errors=errs)
    await state.audit.record(who.user, who.role, "job.start", f"job:{job.id}",
                             {"kind": RETRY_KIND, "selection": body.target(),
                              "reason": body.reason}, "ok")
    return JSONResponse(job_json(job), status_code=202)
