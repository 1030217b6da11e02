"""Admin API for 大学生批量参保 / 大学生批量暂停: upload a file, watch it, download reports.

    POST /admin/batches/students/{op}?filename=NAME   the XLSX or CSV as the raw body -> 202
    GET  /admin/batches/{job_id}                      progress, counts, report names
    GET  /admin/batches/{job_id}/files/{name}         a report: invalid.*, success.*,
                                                      failure.*, difficulty.*

The job is ``services.student_batches`` (run in this process, kept in memory,
reports on disk). Role ``caseworker``; each finished job is audited.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from api.deps import Caseworker, State
from services.student_batches import FILENAME, MAX_UPLOAD_BYTES, BatchJobs

__all__ = ["router"]

router = APIRouter(tags=["admin: student batches"])


async def _jobs(state: State) -> BatchJobs:
    return state.batch_jobs


Jobs = Annotated[BatchJobs, Depends(_jobs)]


def _refuse(field: str, reason: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": {"field": field, "reason": reason}}, status)


@router.post("/admin/batches/students/{op}", status_code=202,
             summary="Upload a 大学生批量参保 (enroll) or 批量暂停 (stop) file: XLSX or CSV")
async def upload(op: Literal["enroll", "stop"], filename: str, request: Request,
                 principal: Caseworker, jobs: Jobs, state: State) -> JSONResponse:
    if not FILENAME.match(filename):
        return _refuse("filename", "must end in .xlsx or .csv, letters, digits, - _ . only", 422)
    body = await request.body()
    if len(body) > MAX_UPLOAD_BYTES:
        return _refuse("body", f"{len(body)} bytes is over the {MAX_UPLOAD_BYTES} limit", 413)
    if not body:
        return _refuse("body", "empty file", 422)
    job = await jobs.start(op, filename, body, getattr(principal, "user", "anonymous"),
                           tax=state.deps.settings.partner("tax"), audit=state.audit)
    return JSONResponse({"job_id": job.job_id, "state": job.state}, status_code=202)


@router.get("/admin/batches/{job_id}", summary="Progress and counts of a student batch")
async def status(job_id: str, principal: Caseworker, jobs: Jobs) -> JSONResponse:
    job = jobs.get(job_id)
    if job is None:
        return JSONResponse({"detail": f"no batch {job_id}"}, 404)
    return JSONResponse(job.view())


@router.get("/admin/batches/{job_id}/files/{name}", summary="Download a batch report")
async def download(job_id: str, name: str, principal: Caseworker, jobs: Jobs) -> Any:
    job = jobs.get(job_id)
    path = job.report(name) if job else None
    if path is None:
        return JSONResponse({"detail": f"no report {name} for batch {job_id}"}, 404)
    return FileResponse(path, filename=f"{job_id[:8]}-{name}")
