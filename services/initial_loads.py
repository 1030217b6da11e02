"""统模式 initial load and 职工批量暂停 files, run in this process against tax.

A job runs ``jobs.initial_load.run_initial_load``. Its folder is named after the
kind and the file's bytes (``.run/initial_loads/<kind>-<sha256[:16]>/``): the file,
the manifest and the reports live there, so uploading the same file again after
an interruption (a crash, a restart of the hub) continues where the manifest
says, and tax replays any chunk that was in flight. Two jobs never run in one
folder at once (``LoadBusy``). Jobs are kept in memory (like the student
batches), the folder stays on disk. Each finished job is audited with its counts.

``load_file`` is the same job for Python callers (the demo, a script): settings, a
``PartnerConfig`` or a tax URL, a file, an output directory -> ``LoadSummary``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

import httpx

from adapters.tax.initial_load import InitialLoadClient
from config.settings import HubSettings, PartnerConfig
from contracts.envelope import new_id
from contracts.errors import HubError
from contracts.initial_load import DEFAULT_CHUNK_ROWS, LoadKind
from jobs.initial_load import ChunkRetry, LoadProgress, LoadSummary, Progress, run_initial_load
from jobs.student_batch import check_readable
from services.audit import Audit
from services.student_batches import FILENAME, MAX_UPLOAD_BYTES

__all__ = ["FILENAME", "ROOT", "InitialLoadJobs", "LoadBusy", "LoadJob", "load_file"]

log = logging.getLogger("hub.initial_loads")

ROOT: Final = Path(".run") / "initial_loads"
Tax = HubSettings | PartnerConfig | str


class LoadBusy(Exception):
    """The same file of the same kind is being loaded by a running job."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"the same file is already being loaded by job {job_id}")
        self.job_id = job_id


def _endpoint(tax: Tax) -> tuple[str, float]:
    if isinstance(tax, str):
        return tax, 60.0
    partner = tax.partner("tax") if isinstance(tax, HubSettings) else tax
    return partner.endpoint, max(partner.timeout_s, 30.0)


async def load_file(kind: LoadKind, source: Path, out_dir: Path, *, tax: Tax,
                    chunk_size: int = DEFAULT_CHUNK_ROWS, concurrency: int = 4,
                    retry: ChunkRetry | None = None,
                    progress: Progress | None = None,
                    formats: tuple[str, ...] = ("csv", "xlsx"),
                    transport: httpx.AsyncBaseTransport | None = None) -> LoadSummary:
    """One file to tax with a client of its own; resumable like the job (same ``out_dir``).

    ``tax`` is the hub's settings, tax's ``PartnerConfig`` or the SOAP URL
    (``http://host/tax/ws``); ``transport`` is httpx's (tests). Raises ``ValidationFailed``
    when the file cannot be read.
    """
    url, timeout = _endpoint(tax)
    async with InitialLoadClient(url, timeout=timeout, transport=transport) as client:
        return await run_initial_load(kind, source, client, out_dir, chunk_size=chunk_size,
                                      concurrency=concurrency, retry=retry, progress=progress,
                                      formats=formats)


@dataclass
class LoadJob:
    job_id: str
    kind: LoadKind
    filename: str
    actor: str
    folder: Path
    state: Literal["running", "finished", "failed"] = "running"
    progress: LoadProgress = field(default_factory=LoadProgress)
    error: str = ""
    summary: LoadSummary | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        s = self.summary
        return {"job_id": self.job_id, "kind": self.kind, "file": self.filename,
                "state": self.state, "progress": self.progress.view(), "error": self.error,
                "batch_id": None if s is None else s.batch_id,
                "counts": None if s is None else s.counts(), "files": sorted(self.files)}

    def report(self, name: str) -> Path | None:
        """A report of this job that is still on disk."""
        path = self.files.get(name)
        return path if path is not None and path.exists() else None


class InitialLoadJobs:
    """The initial-load jobs of one API and the tasks running them."""

    def __init__(self, root: Path = ROOT, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
                 retry: ChunkRetry | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.root = root
        self.max_upload_bytes = max_upload_bytes
        self.retry = retry
        self.transport = transport
        """httpx transport of tax's client (tests: the desk in process); None: the network."""
        self.jobs: dict[str, LoadJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, job_id: str) -> LoadJob | None:
        return self.jobs.get(job_id)

    def running_in(self, folder: Path) -> LoadJob | None:
        return next((j for j in self.jobs.values()
                     if j.folder == folder and j.state == "running"), None)

    async def start(self, kind: LoadKind, filename: str, body: bytes | IO[bytes], actor: str,
                    *, tax: PartnerConfig, audit: Audit | None = None) -> LoadJob:
        """Keep the file and run it in the background; ``filename`` must match ``FILENAME``.

        ``ValidationFailed`` (column ``文件``) when the file cannot be read within the
        limits (nothing kept, no job); ``LoadBusy`` when the same file of the same kind is
        running already.
        """
        if not FILENAME.match(filename):
            raise ValueError(f"not an upload name: {filename!r}")
        incoming = self.root / "incoming" / new_id()
        incoming.mkdir(parents=True, exist_ok=True)
        staged = incoming / filename
        try:
            digest = await asyncio.to_thread(_keep, body, staged)
            await asyncio.to_thread(check_readable, staged)
            folder = self.root / f"{kind}-{digest[:16]}"
            if (busy := self.running_in(folder)) is not None:
                raise LoadBusy(busy.job_id)
            folder.mkdir(parents=True, exist_ok=True)
            source = folder / filename
            await asyncio.to_thread(staged.replace, source)
        finally:
            await asyncio.to_thread(shutil.rmtree, incoming, True)
        job = LoadJob(new_id(), kind, filename, actor, folder)
        self.jobs[job.job_id] = job
        task = asyncio.get_running_loop().create_task(self._run(job, source, tax, audit))
        self._tasks.add(task)  # asyncio keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: LoadJob, source: Path, tax: PartnerConfig,
                   audit: Audit | None) -> None:
        def progress(p: LoadProgress) -> None:
            job.progress = LoadProgress(**p.view())

        try:
            job.summary = await load_file(job.kind, source, job.folder, tax=tax,
                                          retry=self.retry, progress=progress,
                                          transport=self.transport)
            job.files = dict(job.summary.files)
            job.state = "finished"
        except HubError as exc:
            job.state, job.error = "failed", exc.reason
        except Exception as exc:  # a job never takes the hub down; the reason is shown
            log.exception("initial load %s failed", job.job_id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        if audit is not None:
            await audit.record(job.actor, "operations", f"initial_load.{job.kind}", job.job_id,
                               job.view()["counts"] or {"error": job.error}, job.state)

    async def wait(self) -> None:
        """Until every running job is done (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _keep(body: bytes | IO[bytes], path: Path) -> str:
    """Write the upload to ``path``; its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        if isinstance(body, bytes | bytearray):
            digest.update(body)
            out.write(body)
        else:
            while block := body.read(1024 * 1024):
                digest.update(block)
                out.write(block)
    return digest.hexdigest()
