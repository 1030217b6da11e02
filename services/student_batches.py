"""大学生批量参保 / 大学生批量暂停 files, run in this process against tax's batch operations.

A job runs ``jobs.student_batch.run_batch`` (chunks with their own serial, so a
re-run of the same file gets tax's replayed answers, not a second enrollment).
The file and its reports are kept under ``.run/batches/<job_id>/``; jobs are
kept in memory (like bulk resends), the reports stay on disk. Each finished
job is audited with its counts, or its error.

An upload is bounded before it is a job: at most ``max_upload_bytes`` (the HTTP
layer streams the body into a spooled temp file with a running count and hands
over the file, never the bytes), then read through once without validating
(``jobs.student_batch.check_readable``: the XLSX archive's unzipped size,
compression ratio and member count, and the row count, against the module
constants of ``contracts.student_batch``). A file past a limit, or one that
cannot be read at all, is refused with ``ValidationFailed`` and leaves nothing
behind; what its rows say is the job's to report.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from adapters.tax.student_batch import StudentBatchClient
from config.settings import PartnerConfig
from contracts.envelope import new_id
from contracts.errors import HubError
from contracts.student_batch import BatchOp
from jobs.student_batch import BatchSummary, HeldLookup, check_readable, run_batch
from services.audit import Audit

__all__ = ["FILENAME", "MAX_UPLOAD_BYTES", "ROOT", "BatchJob", "BatchJobs"]

log = logging.getLogger("hub.batches")

MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
"""An upload's size (the default of ``BatchJobs.max_upload_bytes``); a 50,000-row XLSX is
a few MB, a CSV of them about 8 MB."""
ROOT: Final = Path(".run") / "batches"
FILENAME: Final = re.compile(r"^[\w\-. ]{1,120}\.(xlsx|csv)$", re.I)
"""An upload's name: letters, digits, ``- _ .`` and spaces, ending in .xlsx or .csv."""


@dataclass
class BatchJob:
    job_id: str
    op: BatchOp
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

    def report(self, name: str) -> Path | None:
        """A report of this job that is still on disk."""
        path = self.files.get(name)
        return path if path is not None and path.exists() else None


class BatchJobs:
    """The student batch jobs of one API and the tasks running them."""

    def __init__(self, root: Path = ROOT, *, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.root = root
        self.max_upload_bytes = max_upload_bytes
        self.jobs: dict[str, BatchJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, job_id: str) -> BatchJob | None:
        return self.jobs.get(job_id)

    async def start(self, op: BatchOp, filename: str, body: bytes | IO[bytes], actor: str, *,
                    tax: PartnerConfig, audit: Audit | None = None,
                    held: HeldLookup | None = None) -> BatchJob:
        """Keep the file and run it in the background; ``filename`` must match ``FILENAME``.

        ``body`` is the file's bytes or a binary file positioned at its start (read here,
        not closed). ``ValidationFailed`` (column ``文件``) when the file cannot be read
        within the limits: nothing is kept and no job is made. ``held``: the hub's
        困难人员库 (F7), asked for the persons tax enrolled (seed 003 line 1816).
        """
        if not FILENAME.match(filename):
            raise ValueError(f"not an upload name: {filename!r}")
        job = BatchJob(new_id(), op, filename, actor)
        folder = self.root / job.job_id
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / filename
        try:
            await asyncio.to_thread(_keep, body, source)
            await asyncio.to_thread(check_readable, source)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        self.jobs[job.job_id] = job
        task = asyncio.get_running_loop().create_task(_run(job, source, tax, audit, held))
        self._tasks.add(task)  # asyncio keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return job


def _keep(body: bytes | IO[bytes], path: Path) -> None:
    if isinstance(body, bytes | bytearray):
        path.write_bytes(body)
        return
    with path.open("wb") as out:
        shutil.copyfileobj(body, out, 1024 * 1024)


async def _run(job: BatchJob, source: Path, tax: PartnerConfig, audit: Audit | None,
               held: HeldLookup | None = None) -> None:
    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        async with StudentBatchClient(tax.endpoint, timeout=max(tax.timeout_s, 30.0)) as c:
            job.summary = await run_batch(job.op, source, c, source.parent, progress=progress,
                                          held=held)
        job.files = dict(job.summary.files.items())
        job.state = "finished"
    except HubError as exc:
        job.state, job.error = "failed", exc.reason
    except Exception as exc:  # a job never takes the hub down; the reason is shown
        log.exception("student batch %s failed", job.job_id)
        job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
    if audit is not None:
        await audit.record(job.actor, "caseworker", f"batch.students.{job.op}", job.job_id,
                           job.view()["counts"] or {"error": job.error}, job.state)
