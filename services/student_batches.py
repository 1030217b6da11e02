"""大学生批量参保 / 大学生批量暂停 files, run in this process against tax's batch operations.

A job runs ``jobs.student_batch.run_batch`` (chunks with their own serial, so a
re-run of the same file gets tax's replayed answers, not a second enrollment).
The file and its reports are kept under ``.run/batches/<job_id>/``. Jobs are durable
(``services.job_runner``, kind ``batch.students``; the row keeps op, file name and
folder): listed and cancelled with the others (``/admin/jobs``), and a job a stopped
hub left running is run again from its file by the next start (tax replays the chunks
it had answered). Each finished job is audited with its counts, or its error.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from adapters.tax.student_batch import StudentBatchClient
from config.settings import PartnerConfig
from contracts.envelope import new_id
from contracts.errors import HubError
from contracts.student_batch import BatchOp
from jobs.student_batch import BatchSummary, HeldLookup, check_readable, run_batch
from services.audit import Actor, Audit, Caller
from services.job_runner import JobRunner, RunnerJobs, watch
from services.jobs import JobContext, JobView

__all__ = ["FILENAME", "KIND", "MAX_UPLOAD_BYTES", "ROOT", "BatchFailed", "BatchJob",
           "BatchJobs"]

log = logging.getLogger("hub.batches")

MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
"""An upload's size (the default of ``BatchJobs.max_upload_bytes``); a 50,000-row XLSX is
a few MB, a CSV of them about 8 MB."""
ROOT: Final = Path(".run") / "batches"
KIND: Final = "batch.students"
"""The durable job kind (``services.job_runner``)."""
FILENAME: Final = re.compile(r"^[\w\-. ]{1,120}\.(xlsx|csv)$", re.I)
"""An upload's name: letters, digits, ``- _ .`` and spaces, ending in .xlsx or .csv."""


_STATES: Final[Mapping[str, Literal["running", "finished", "failed", "cancelled"]]] = {
    "queued": "running", "running": "running", "done": "finished", "failed": "failed",
    "cancelled": "cancelled"}


class BatchFailed(Exception):
    """The batch ended with an error (its reason is the job's error)."""


@dataclass
class BatchJob:
    job_id: str
    op: BatchOp
    filename: str
    actor: str
    state: Literal["running", "finished", "failed", "cancelled"] = "running"
    done: int = 0
    total: int = 0
    error: str = ""
    summary: BatchSummary | None = None
    files: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] | None = None

    @classmethod
    def of(cls, v: JobView) -> BatchJob:
        """The view of a durable ``batch.students`` job."""
        p, r = v.params, v.report
        error = (v.error or "").removeprefix(f"{BatchFailed.__name__}: ")
        return cls(job_id=v.id, op=p.get("op", "enroll"), filename=str(p.get("filename", "")),
                   actor=v.started_by, state=_STATES[v.state], done=v.done,
                   total=v.total or 0, error=error,
                   files={n: Path(f) for n, f in (r.get("files") or {}).items()},
                   counts=r.get("counts"))

    def view(self) -> dict[str, Any]:
        s = self.summary
        counts = self.counts if s is None else {
            "rows": s.total_rows, "valid": s.valid_rows, "invalid": s.invalid_rows,
            "success": s.success, "failure": s.failure, "difficulty": s.difficulty,
            "chunks_failed": s.chunks_failed}
        return {"job_id": self.job_id, "op": self.op, "file": self.filename,
                "state": self.state, "progress": {"done": self.done, "total": self.total},
                "error": self.error, "counts": counts, "files": sorted(self.files)}

    def report(self, name: str) -> Path | None:
        """A report of this job that is still on disk."""
        path = self.files.get(name)
        return path if path is not None and path.exists() else None


class BatchJobs(RunnerJobs):
    """Student batch jobs on a durable runner (one of its own in memory without one)."""

    def __init__(self, root: Path = ROOT, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
                 runner: JobRunner | None = None) -> None:
        self.root = root
        self.max_upload_bytes = max_upload_bytes
        super().__init__(runner)

    def bind(self, *, tax: PartnerConfig, audit: Audit | None = None,
             held: HeldLookup | None = None) -> None:
        """Register the ``batch.students`` handler with what it runs against (the hub does
        it when it is wired, so that a job left running is run again at start)."""
        async def handle(ctx: JobContext) -> Mapping[str, Any]:
            return await run_job(ctx, tax, audit, held)

        self.runner.register(KIND, handle)

    async def get(self, job_id: str) -> BatchJob | None:
        view = await self.runner.get(job_id)
        return None if view is None or view.kind != KIND else BatchJob.of(view)

    async def start(self, op: BatchOp, filename: str, body: bytes | IO[bytes],
                    actor: str | Actor, *, tax: PartnerConfig, audit: Audit | None = None,
                    held: HeldLookup | None = None) -> BatchJob:
        """Keep the file and run it in the background; ``filename`` must match ``FILENAME``.

        ``body`` is the file's bytes or a binary file positioned at its start (read here,
        not closed). ``ValidationFailed`` (column ``文件``) when the file cannot be read
        within the limits: nothing is kept and no job is made. ``held``: the hub's
        困难人员库 (F7), asked for the persons tax enrolled (seed 003 line 1816).
        ``tax``/``audit``/``held`` serve a runner whose kind is not bound yet (tests).
        """
        if not FILENAME.match(filename):
            raise ValueError(f"not an upload name: {filename!r}")
        who = Caller(actor, "caseworker") if isinstance(actor, str) else actor
        job_id = new_id()
        folder = self.root / job_id
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / filename
        try:
            await asyncio.to_thread(_keep, body, source)
            await asyncio.to_thread(check_readable, source)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        if KIND not in self.runner.kinds():
            self.bind(tax=tax, audit=audit, held=held)
        view = await self.runner.start(KIND, {"op": op, "filename": filename,
                                              "folder": str(folder)}, who, job_id=job_id)
        self.started.append(job_id)
        return BatchJob.of(view)


def _keep(body: bytes | IO[bytes], path: Path) -> None:
    if isinstance(body, bytes | bytearray):
        path.write_bytes(body)
        return
    with path.open("wb") as out:
        shutil.copyfileobj(body, out, 1024 * 1024)


async def run_job(ctx: JobContext, tax: PartnerConfig, audit: Audit | None,
                  held: HeldLookup | None = None) -> dict[str, Any]:
    """The ``batch.students`` handler: the kept file, from its start (a resumed run gets
    tax's replayed answers for the chunks tax had answered); cancelled between chunks."""
    p = ctx.params
    folder = Path(p["folder"])
    job = BatchJob(ctx.job_id, p["op"], p["filename"], ctx.actor.user)
    cancelled = await watch(ctx, _run(job, folder / job.filename, tax, audit, held),
                            lambda: (job.total or None, job.done, 0, 0))
    if cancelled:
        return {"cancelled": True, "files": {}}
    if job.state == "failed":
        raise BatchFailed(job.error)
    return {"counts": job.view()["counts"],
            "files": {n: str(path) for n, path in job.files.items()}}


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
