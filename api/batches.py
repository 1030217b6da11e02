"""Admin API for 大学生批量参保 / 大学生批量暂停: upload a file, watch it, download reports.

    POST /admin/batches/students/{op}?filename=NAME   the XLSX or CSV as the raw body -> 202
    GET  /admin/batches/{job_id}                      progress, counts, report names
    GET  /admin/batches/{job_id}/files/{name}         a report: invalid.*, success.*,
                                                      failure.*, difficulty.*

The job runs ``jobs.student_batch.run_batch`` in this process against tax's
batch operations (chunks with their own serial, so a re-run of the same file
gets tax's replayed answers, not a second enrollment). Reports are written
under ``.run/batches/<job_id>/``; jobs are kept in memory (like bulk resends),
the reports stay on disk. Role ``caseworker``; each upload is audited.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from adapters.tax.student_batch import StudentBatchClient
from contracts.envelope import new_id
from contracts.errors import HubError
from jobs.student_batch import BatchSummary, run_batch
from services.deps import Deps

__all__ = ["MAX_UPLOAD_BYTES", "batches_router"]

log = logging.getLogger("hub.batches")

MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
ROOT: Final = Path(".run") / "batches"
_NAME = re.compile(r"^[\w\-. ]{1,120}\.(xlsx|csv)$", re.I)


@dataclass
class BatchJob:
    job_id: str
    op: str
    filename: str
    actor: str
    state: Literal["running", "finished", "failed"] = "running"
    done: int = 0
    total: int = 0
    error: str = ""
    summary: BatchSummary | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        s = self.summary
        return {"job_id": self.job_id, "op": self.op, "file": self.filename,
                "state": self.state, "progress": {"done": self.done, "total": self.total},
                "error": self.error,
                "counts": None if s is None else {
                    "rows": s.total_rows, "valid": s.valid_rows, "invalid": s.invalid_rows,
                    "success": s.success, "failure": s.failure, "difficulty": s.difficulty,
                    "chunks_failed": s.chunks_failed},
                "files": sorted(self.files)}


def batches_router(deps: Deps, *, require: Callable[..., Any],
                   audit: Any | None = None) -> APIRouter:
    r = APIRouter(tags=["admin: student batches"])
    jobs: dict[str, BatchJob] = {}
    tasks: set[asyncio.Task[None]] = set()
    principal_dep = Depends(require("caseworker"))

    async def run(job: BatchJob, source: Path) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        tax = deps.settings.partner("tax")
        try:
            async with StudentBatchClient(tax.endpoint, timeout=max(tax.timeout_s, 30.0)) as c:
                job.summary = await run_batch(job.op, source, c,  # type: ignore[arg-type]
                                              source.parent, progress=progress)
            job.files = {name: path for name, path in job.summary.files.items()}
            job.state = "finished"
        except HubError as exc:
            job.state, job.error = "failed", exc.reason
        except Exception as exc:  # a job never takes the hub down; the reason is shown
            log.exception("student batch %s failed", job.job_id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        if audit is not None:
            await audit.record(job.actor, "caseworker", f"batch.students.{job.op}", job.job_id,
                               job.view()["counts"] or {"error": job.error}, job.state)

    @r.post("/admin/batches/students/{op}", status_code=202,
            summary="Upload a 大学生批量参保 (enroll) or 批量暂停 (stop) file: XLSX or CSV")
    async def upload(op: Literal["enroll", "stop"], filename: str, request: Request,
                     principal: Any = principal_dep) -> JSONResponse:
        if not _NAME.match(filename):
            return JSONResponse({"detail": {"field": "filename", "reason": "must end in .xlsx "
                                            "or .csv, letters, digits, - _ . only"}}, 422)
        body = await request.body()
        if len(body) > MAX_UPLOAD_BYTES:
            return JSONResponse({"detail": {"field": "body", "reason": f"{len(body)} bytes is "
                                            f"over the {MAX_UPLOAD_BYTES} limit"}}, 413)
        if not body:
            return JSONResponse({"detail": {"field": "body", "reason": "empty file"}}, 422)
        job = BatchJob(new_id(), op, filename, getattr(principal, "user", "anonymous"))
        folder = ROOT / job.job_id
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / filename
        await asyncio.to_thread(source.write_bytes, body)
        jobs[job.job_id] = job
        task = asyncio.get_running_loop().create_task(run(job, source))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return JSONResponse({"job_id": job.job_id, "state": job.state}, status_code=202)

    @r.get("/admin/batches/{job_id}", summary="Progress and counts of a student batch")
    async def status(job_id: str, principal: Any = principal_dep) -> JSONResponse:
        job = jobs.get(job_id)
        if job is None:
            return JSONResponse({"detail": f"no batch {job_id}"}, 404)
        return JSONResponse(job.view())

    @r.get("/admin/batches/{job_id}/files/{name}", summary="Download a batch report")
    async def download(job_id: str, name: str, principal: Any = principal_dep) -> Any:
        job = jobs.get(job_id)
        path = job.files.get(name) if job else None
        if path is None or not path.exists():
            return JSONResponse({"detail": f"no report {name} for batch {job_id}"}, 404)
        return FileResponse(path, filename=f"{job_id[:8]}-{name}")

    return r
