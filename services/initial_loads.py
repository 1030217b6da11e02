"""统模式 initial load and 职工批量暂停 files, run in this process against tax.

A job runs ``jobs.initial_load.run_initial_load``. Its folder is named after the
kind and the file's bytes (``.run/initial_loads/<kind>-<sha256[:16]>/``): the file,
the manifest and the reports live there, so uploading the same file again after
an interruption (a crash, a restart of the hub) continues where the manifest
says, and tax replays any chunk that was in flight. Two jobs never run in one
folder at once (``LoadBusy``). Jobs are durable (``services.job_runner``, kind
``initial_load``; the row keeps kind, file name and folder): listed and cancelled with
the others (``/admin/jobs``), and a job a stopped hub left running is resumed by the next
start from its folder's manifest. Each finished job is audited with its counts.

``load_file`` is the same job for Python callers (the demo, a script): settings, a
``PartnerConfig`` or a tax URL, a file, an output directory -> ``LoadSummary``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from collections.abc import Mapping
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
from services.audit import Actor, Audit, Caller
from services.job_runner import JobRunner, RunnerJobs, watch
from services.jobs import JobContext, JobView
from services.student_batches import FILENAME, MAX_UPLOAD_BYTES

__all__ = ["FILENAME", "KIND", "ROOT", "InitialLoadJobs", "LoadBusy", "LoadFailed", "LoadJob",
           "load_file"]

log = logging.getLogger("hub.initial_loads")

ROOT: Final = Path(".run") / "initial_loads"
KIND: Final = "initial_load"
"""The durable job kind (``services.job_runner``)."""
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


_STATES: Final[Mapping[str, Literal["running", "finished", "failed", "cancelled"]]] = {
    "queued": "running", "running": "running", "done": "finished", "failed": "failed",
    "cancelled": "cancelled"}


class LoadFailed(Exception):
    """The load ended with an error (its reason is the job's error)."""


@dataclass
class LoadJob:
    job_id: str
    kind: LoadKind
    filename: str
    actor: str
    folder: Path
    state: Literal["running", "finished", "failed", "cancelled"] = "running"
    progress: LoadProgress = field(default_factory=LoadProgress)
    error: str = ""
    summary: LoadSummary | None = None
    files: dict[str, Path] = field(default_factory=dict)
    batch_id: str | None = None
    counts: dict[str, Any] | None = None

    @classmethod
    def of(cls, v: JobView) -> LoadJob:
        """The view of a durable ``initial_load`` job."""
        p, r = v.params, v.report
        progress = LoadProgress(**{k: int(n) for k, n in (r.get("progress") or {}).items()}) \
            if r.get("progress") else LoadProgress(rows_total=v.total or 0, rows_ok=v.done,
                                                   rows_failed=v.failed)  # while it runs
        return cls(job_id=v.id, kind=p.get("kind", "unit"), filename=str(p.get("filename", "")),
                   actor=v.started_by, folder=Path(str(p.get("folder", ""))),
                   state=_STATES[v.state], progress=progress,
                   error=(v.error or "").removeprefix(f"{LoadFailed.__name__}: "),
                   files={n: Path(f) for n, f in (r.get("files") or {}).items()},
                   batch_id=r.get("batch_id"), counts=r.get("counts"))

    def view(self) -> dict[str, Any]:
        s = self.summary
        return {"job_id": self.job_id, "kind": self.kind, "file": self.filename,
                "state": self.state, "progress": self.progress.view(), "error": self.error,
                "batch_id": self.batch_id if s is None else s.batch_id,
                "counts": self.counts if s is None else s.counts(),
                "files": sorted(self.files)}

    def report(self, name: str) -> Path | None:
        """A report of this job that is still on disk."""
        path = self.files.get(name)
        return path if path is not None and path.exists() else None


class InitialLoadJobs(RunnerJobs):
    """Initial-load jobs on a durable runner (``bind``; one of its own in memory until)."""

    def __init__(self, root: Path = ROOT, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
                 retry: ChunkRetry | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 runner: JobRunner | None = None) -> None:
        self.root = root
        self.max_upload_bytes = max_upload_bytes
        self.retry = retry
        self.transport = transport
        """httpx transport of tax's client (tests: the desk in process); None: the network."""
        super().__init__(runner)

    def bind(self, *, tax: PartnerConfig, audit: Audit | None = None,
             runner: JobRunner | None = None) -> None:
        """Run on ``runner`` (the hub's, at wiring: a load left running resumes at start)
        with the ``initial_load`` handler against ``tax``."""
        if runner is not None:
            self._runner = runner

        async def handle(ctx: JobContext) -> Mapping[str, Any]:
            return await self._handle(ctx, tax, audit)

        self.runner.register(KIND, handle)

    async def get(self, job_id: str) -> LoadJob | None:
        view = await self.runner.get(job_id)
        return None if view is None or view.kind != KIND else LoadJob.of(view)

    async def running_in(self, folder: Path) -> str | None:
        """The id of a job queued or running in ``folder``, in any process."""
        for state in ("running", "queued"):
            for v in await self.runner.list(kind=KIND, state=state, limit=500):
                if v.params.get("folder") == str(folder):
                    return v.id
        return None

    async def start(self, kind: LoadKind, filename: str, body: bytes | IO[bytes],
                    actor: str | Actor, *, tax: PartnerConfig,
                    audit: Audit | None = None) -> LoadJob:
        """Keep the file and run it in the background; ``filename`` must match ``FILENAME``.

        ``ValidationFailed`` (column ``文件``) when the file cannot be read within the
        limits (nothing kept, no job); ``LoadBusy`` when the same file of the same kind is
        running already. ``tax``/``audit`` serve a runner not bound yet (tests).
        """
        if not FILENAME.match(filename):
            raise ValueError(f"not an upload name: {filename!r}")
        who = Caller(actor, "operations") if isinstance(actor, str) else actor
        incoming = self.root / "incoming" / new_id()
        incoming.mkdir(parents=True, exist_ok=True)
        staged = incoming / filename
        try:
            digest = await asyncio.to_thread(_keep, body, staged)
            await asyncio.to_thread(check_readable, staged)
            folder = self.root / f"{kind}-{digest[:16]}"
            if (busy := await self.running_in(folder)) is not None:
                raise LoadBusy(busy)
            folder.mkdir(parents=True, exist_ok=True)
            source = folder / filename
            await asyncio.to_thread(staged.replace, source)
        finally:
            await asyncio.to_thread(shutil.rmtree, incoming, True)
        if KIND not in self.runner.kinds():
            self.bind(tax=tax, audit=audit)
        view = await self.runner.start(KIND, {"kind": kind, "filename": filename,
                                              "folder": str(folder)}, who)
        self.started.append(view.id)
        return LoadJob.of(view)

    async def _handle(self, ctx: JobContext, tax: PartnerConfig,
                      audit: Audit | None) -> dict[str, Any]:
        """The ``initial_load`` handler: the folder's file from where its manifest says;
        a cancel stops it between chunks (uploading the file again continues it)."""
        p = ctx.params
        folder = Path(p["folder"])
        job = LoadJob(ctx.job_id, p["kind"], p["filename"], ctx.actor.user, folder)
        progress = job.progress

        def counts() -> tuple[int | None, int, int, int]:
            return (progress.rows_total or None, progress.rows_ok, progress.rows_failed, 0)

        def moved(now: LoadProgress) -> None:
            for k, n in now.view().items():
                setattr(progress, k, n)

        cancelled = await watch(ctx, self._run(job, folder / job.filename, tax, audit, moved),
                                counts)
        if cancelled:
            return {"cancelled": True, "progress": progress.view()}
        if job.state == "failed":
            raise LoadFailed(job.error)
        s = job.summary
        return {"progress": progress.view(), "batch_id": None if s is None else s.batch_id,
                "counts": None if s is None else s.counts(),
                "files": {n: str(f) for n, f in job.files.items()}}

    async def _run(self, job: LoadJob, source: Path, tax: PartnerConfig,
                   audit: Audit | None, progress: Progress) -> None:
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
