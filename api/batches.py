"""Admin API for 大学生批量参保 / 大学生批量暂停: upload a file, watch it, download reports.

    POST /admin/batches/students/{op}?filename=NAME   the XLSX or CSV as the raw body -> 202
    GET  /admin/batches/{job_id}                      progress, counts, report names
    GET  /admin/batches/{job_id}/files/{name}         a report: invalid.*, success.*,
                                                      failure.*, difficulty.*

The job is ``services.student_batches`` (a durable job, kind ``batch.students``:
listed and cancelled at ``/admin/jobs``; reports on disk). Role ``caseworker``; each
finished job is audited.

The body is never held whole: a ``Content-Length`` over the limit is a 413 before a
byte is read, and the body is streamed into a spooled temp file (in memory up to
``SPOOL_IN_MEMORY_BYTES``, then on disk) with a running count that stops reading at
the limit (413). A file that cannot be read within the limits of
``contracts.student_batch`` (XLSX unzipped size, compression ratio, members; rows)
is a 422 naming the reason.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from typing import IO, Annotated, Any, Final, Literal, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from api.deps import Caseworker, State
from api.problems import field_error, problem
from contracts.errors import ValidationFailed
from services.student_batches import FILENAME, BatchJobs
from storage.difficulty import DifficultyStore

__all__ = ["receive_upload", "router"]

router = APIRouter(tags=["admin: student batches"])

SPOOL_IN_MEMORY_BYTES: Final = 1024 * 1024
"""Of an upload kept in memory; the rest goes to a temp file on disk."""


class _TooLarge(Exception):
    pass


async def _jobs(state: State) -> BatchJobs:
    """The app's batch jobs, on the hub's durable runner (``Deps.jobs``, the handler bound at
    wiring) when it has one."""
    own, runner = state.batch_jobs, state.deps.jobs
    if runner is None:
        return own
    return BatchJobs(own.root, max_upload_bytes=own.max_upload_bytes, runner=runner)


Jobs = Annotated[BatchJobs, Depends(_jobs)]


_WHERE: Final = {"filename": "query"}


def _refuse(field: str, reason: str, status: int) -> JSONResponse:
    code = {400: "BAD_REQUEST", 413: "TOO_LARGE"}.get(status, "VALIDATION")
    return problem(status, f"{field}: {reason}", code=code,
                   errors=[field_error(field, reason, where=_WHERE.get(field))])


@router.post("/admin/batches/students/{op}", status_code=202,
             summary="Upload a 大学生批量参保 (enroll) or 批量暂停 (stop) file: XLSX or CSV")
async def upload(op: Literal["enroll", "stop"], filename: str, request: Request,
                 principal: Caseworker, jobs: Jobs, state: State) -> JSONResponse:
    async def start(spool: IO[bytes]) -> JSONResponse:
        store = state.deps.difficulty  # F7's 困难人员库, when this hub has one (1816)
        job = await jobs.start(op, filename, spool, principal or "anonymous",
                               tax=state.deps.settings.partner("tax"), audit=state.audit,
                               held=store.held_active if isinstance(store, DifficultyStore)
                               else None)
        return JSONResponse({"job_id": job.job_id, "state": job.state}, status_code=202)

    return await receive_upload(request, filename, jobs.max_upload_bytes, start)


async def receive_upload(request: Request, filename: str, limit: int,
                         start: Callable[[IO[bytes]], Awaitable[JSONResponse]]) -> JSONResponse:
    """An upload's checks, then ``start(file)`` with the body in a spooled temp file
    (positioned at its start): 422 for a name not matching ``FILENAME``, 400/413 for a
    ``Content-Length`` that is not a number or over ``limit`` (before a byte is read), 413
    as soon as the streamed body passes ``limit``, 422 for an empty body or a
    ``ValidationFailed`` of ``start`` (the file cannot be read within the limits).
    Shared with the initial-load upload (``api.initial_loads``)."""
    if not FILENAME.match(filename):
        return _refuse("filename", "must end in .xlsx or .csv, letters, digits, - _ . only", 422)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            return _refuse("Content-Length", "must be a number of bytes", 400)
        if int(declared) > limit:
            return _refuse("body", f"{declared} bytes is over the {limit} limit", 413)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
        try:
            size = await _receive(request, spool, limit)
        except _TooLarge:
            return _refuse("body", f"more than the {limit} bytes limit", 413)
        if not size:
            return _refuse("body", "empty file", 422)
        spool.seek(0)
        try:
            return await start(cast(IO[bytes], spool))
        except ValidationFailed as exc:
            return _refuse("body", "; ".join(r for _, r in exc.errors), 422)


async def _receive(request: Request, spool: Any, limit: int) -> int:
    """Stream the body into ``spool``; ``_TooLarge`` as soon as it passes ``limit`` (the rest
    is not read)."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        spool.write(chunk)
    return size


@router.get("/admin/batches/{job_id}", summary="Progress and counts of a student batch")
async def status(job_id: str, principal: Caseworker, jobs: Jobs) -> JSONResponse:
    job = await jobs.get(job_id[:64])
    if job is None:
        return problem(404, f"no batch {job_id}")
    return JSONResponse(job.view())


@router.get("/admin/batches/{job_id}/files/{name}", summary="Download a batch report")
async def download(job_id: str, name: str, principal: Caseworker, jobs: Jobs) -> Any:
    job = await jobs.get(job_id[:64])
    path = job.report(name) if job else None
    if path is None:
        return problem(404, f"no report {name} for batch {job_id}")
    return FileResponse(path, filename=f"{job_id[:8]}-{name}")
