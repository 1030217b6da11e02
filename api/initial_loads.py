"""Admin API for the 统模式 initial load and 职工批量暂停: upload a file, watch it, get reports.

    POST /admin/initial-loads/{kind}?filename=NAME   the XLSX or CSV as the raw body -> 202
         kind: unit | employee | flexible | resident | employee_suspend
    GET  /admin/initial-loads/{job_id}               progress (rows total/sent/ok/failed,
                                                     chunks done), counts, report names
    GET  /admin/initial-loads/{job_id}/files/{name}  a report: invalid.*, success.*, failure.*

The job is ``services.initial_loads`` (a durable job, kind ``initial_load``: listed and
cancelled at ``/admin/jobs``, resumed after a restart; reports and the manifest on disk
in a folder named after the file). Uploading the same file of the same kind again
continues an interrupted job; while that file is still running it is a 409. Roles
``caseworker`` and ``operations`` (and ``admin``); each finished job is audited. The
body is bounded and spooled exactly like the student batch upload (``api.batches``).
"""

from __future__ import annotations

from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from api.auth import Principal
from api.batches import receive_upload
from api.deps import State, require
from api.problems import problem
from contracts.initial_load import LoadKind
from services.initial_loads import InitialLoadJobs, LoadBusy

__all__ = ["router"]

router = APIRouter(tags=["admin: initial load"])

Loader = Annotated[Principal | None, Depends(require("caseworker", "operations"))]


async def _jobs(state: State) -> InitialLoadJobs:
    return state.deps.initial_loads


Jobs = Annotated[InitialLoadJobs, Depends(_jobs)]


@router.post("/admin/initial-loads/{kind}", status_code=202,
             summary="Upload a 统模式 initial-load file (单位/职工/灵活就业/居民) or a "
                     "职工批量暂停 file: XLSX or CSV")
async def upload(kind: LoadKind, filename: str, request: Request, principal: Loader,
                 jobs: Jobs, state: State) -> JSONResponse:
    async def start(spool: IO[bytes]) -> JSONResponse:
        try:
            job = await jobs.start(kind, filename, spool, principal or "anonymous",
                                   tax=state.deps.settings.partner("tax"), audit=state.audit)
        except LoadBusy as exc:
            return problem(409, str(exc), code="BUSY", job_id=exc.job_id)
        return JSONResponse({"job_id": job.job_id, "state": job.state}, status_code=202)

    return await receive_upload(request, filename, jobs.max_upload_bytes, start)


@router.get("/admin/initial-loads/{job_id}", summary="Progress and counts of an initial load")
async def status(job_id: str, principal: Loader, jobs: Jobs) -> JSONResponse:
    job = await jobs.get(job_id[:64])
    if job is None:
        return problem(404, f"no initial load {job_id[:64]}")
    return JSONResponse(job.view())


@router.get("/admin/initial-loads/{job_id}/files/{name}",
            summary="Download an initial-load report")
async def download(job_id: str, name: str, principal: Loader, jobs: Jobs) -> Any:
    job = await jobs.get(job_id[:64])
    path = job.report(name) if job else None
    if path is None:
        return problem(404, f"no report {name} for initial load {job_id}")
    return FileResponse(path, filename=f"{job_id[:8]}-{name}")
