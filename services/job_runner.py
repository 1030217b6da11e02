"""``JobRunner``: the durable jobs of ``services.jobs``, kept in SQL (``storage.jobs``).

Why this shape:

- A job is a row before it is a task: ``start`` inserts it ``queued`` and then takes
  whatever free rows this process has room for (``limit`` jobs at once per process; the
  rest wait queued and are taken when a slot frees, here or in another process).
- A process runs a row only under a lease (``lease_s``), renewed while it runs. Rows
  whose lease expired (the process died) or was let go (a graceful stop) are taken over
  by ``pump``: at start (``open``) and every ``poll_s`` after, so a restarted hub, or
  another replica, continues the job from its last checkpoint. Handlers therefore must
  be safe to run again from a checkpoint (their items idempotent or re-checked).
- Progress is written throttled (at most once per ``progress_every_s``, and at the end),
  counts and checkpoint in one write, guarded by the lease: a process that lost its
  lease stops (``LeaseLost``) instead of overwriting the new owner's progress.
- A cancel is a flag in SQL; the handler sees it through ``await ctx.cancelled()`` (read
  at most every ``cancel_check_s``; at once in the process that cancelled).
- Readers see masked params (``mask_value`` of what was given, or the ``shown`` copy the
  starter passes) and the masked report; the handler reads the raw params.

``JobRunner.memory()`` is a runner on its own in-memory SQLite database (tests, a hub
part built without the journal's engine): the same code, nothing survives the process.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from contracts.envelope import new_id
from contracts.masking import mask_text, mask_value
from services.audit import Actor, Caller
from services.jobs import JobContext, JobHandler, JobState, JobView
from storage.jobs import JobRecord, JobRow, JobStore

__all__ = ["DEFAULT_LIMIT", "JobRunner", "LeaseLost", "RunnerJobs", "UnknownKind", "plain",
           "watch"]

log = logging.getLogger("hub.jobs")

DEFAULT_LIMIT: Final = 4
"""Jobs one process runs at once; more wait queued."""

ParamsCheck = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""Validates a kind's params at ``start`` (raises ``ValueError``/``ValidationError``) and
returns them normalised: nothing is stored for params a handler would refuse."""


class UnknownKind(ValueError):
    """No handler is registered for this kind in this process."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"no job kind {kind!r} in this hub")
        self.kind = kind


class LeaseLost(BaseException):
    """This process no longer holds the job's lease (another one took it over): the
    handler must stop. A ``BaseException``, like ``CancelledError``, so that a handler's
    ``except Exception`` around one item does not swallow it."""


def plain(value: Any) -> Any:
    """JSON-safe copy (dates and decimals as strings)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Context:
    """One run of one job (``services.jobs.JobContext``)."""

    def __init__(self, runner: JobRunner, rec: JobRecord) -> None:
        self._runner = runner
        self.rec = rec
        self.total: int | None = rec.total
        self.done, self.failed, self.skipped = rec.done, rec.failed, rec.skipped
        self._checkpoint: dict[str, Any] = dict(rec.checkpoint)
        self._dirty = False
        self._written = time.monotonic()
        self._checked = 0.0
        self.cancel_flag = rec.cancel_requested
        self.saw_cancel = False
        self.lost = False

    @property
    def job_id(self) -> str:
        return self.rec.id

    @property
    def params(self) -> Mapping[str, Any]:
        return self.rec.resume

    @property
    def actor(self) -> Actor:
        return Caller(self.rec.started_by, self.rec.role)

    @property
    def checkpoint(self) -> Mapping[str, Any]:
        return self._checkpoint

    async def set_total(self, total: int) -> None:
        self.total = total
        await self.flush(force=True)

    async def advance(self, *, done: int = 0, failed: int = 0, skipped: int = 0,
                      checkpoint: Mapping[str, Any] | None = None) -> None:
        self.done += done
        self.failed += failed
        self.skipped += skipped
        if checkpoint is not None:
            self._checkpoint = dict(checkpoint)
        self._dirty = True
        if time.monotonic() - self._written >= self._runner.progress_every_s:
            await self.flush()

    async def save(self) -> None:
        await self.flush(force=True)

    async def flush(self, *, force: bool = False) -> None:
        """Write counts and checkpoint; ``LeaseLost`` when another process owns the job."""
        if not (self._dirty or force):
            return
        ok = await self._runner.store.progress(
            self.rec.id, self._runner.owner, total=self.total, done=self.done,
            failed=self.failed, skipped=self.skipped, checkpoint=plain(self._checkpoint))
        self._dirty, self._written = False, time.monotonic()
        if not ok:
            self.lost = True
            raise LeaseLost(self.rec.id)

    async def cancelled(self) -> bool:
        if not self.cancel_flag and \
                time.monotonic() - self._checked >= self._runner.cancel_check_s:
            self._checked = time.monotonic()
            try:
                self.cancel_flag = await self._runner.store.cancel_requested(self.rec.id)
            except Exception:  # the database is down: go on, the next check will tell
                log.warning("job %s: reading its cancel flag failed", self.rec.id,
                            exc_info=True)
        if self.cancel_flag:
            self.saw_cancel = True
        return self.cancel_flag


@dataclass
class _Run:
    ctx: _Context
    task: asyncio.Task[None]


class JobRunner:
    """Durable jobs on ``engine`` (``services.jobs.Jobs``); see the module docstring."""

    def __init__(self, engine: AsyncEngine, *, owner: str | None = None,
                 limit: int = DEFAULT_LIMIT, lease_s: float = 30.0,
                 progress_every_s: float = 0.5, poll_s: float = 5.0,
                 cancel_check_s: float = 0.5, create_table: bool = False) -> None:
        self.store = JobStore(engine)
        self.owner = owner or default_owner()
        self.limit = limit
        self.lease_s = lease_s
        self.progress_every_s = progress_every_s
        self.poll_s = poll_s
        self.cancel_check_s = cancel_check_s
        self._create_table = create_table
        self._handlers: dict[str, JobHandler] = {}
        self._checks: dict[str, ParamsCheck] = {}
        self._runs: dict[str, _Run] = {}
        self._lock = asyncio.Lock()
        self._loop: asyncio.Task[None] | None = None
        self._kicks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._keeper: sqlite3.Connection | None = None

    @classmethod
    def memory(cls, **kw: Any) -> JobRunner:
        """A runner on a private in-memory SQLite database (its table made on first use)."""
        # One pooled connection (callers queue for it, as on ``make_engine``'s SQLite), to a
        # named in-memory database; a second, idle connection keeps it alive when the pool
        # drops its own (a task cancelled mid-query invalidates it).
        name = f"file:jobs-{uuid.uuid4().hex}?mode=memory&cache=shared"
        keeper = sqlite3.connect(name, uri=True, check_same_thread=False)
        engine = create_async_engine(f"sqlite+aiosqlite:///{name}&uri=true",
                                     poolclass=AsyncAdaptedQueuePool, pool_size=1,
                                     max_overflow=0, pool_timeout=60)
        runner = cls(engine, create_table=True, **kw)
        runner._keeper = keeper  # its engine is the runner's own: ``close`` disposes it
        return runner

    @property
    def engine(self) -> AsyncEngine:
        return self.store.engine

    # -- the contract (services.jobs.Jobs) --------------------------------------------------

    def register(self, kind: str, handler: JobHandler, *,
                 check: ParamsCheck | None = None) -> None:
        """Bind ``kind`` to ``handler`` (again: the last one wins); ``check`` validates and
        normalises params at ``start``."""
        self._handlers[kind] = handler
        if check is not None:
            self._checks[kind] = check
        else:
            self._checks.pop(kind, None)

    def kinds(self) -> builtins.list[str]:
        return sorted(self._handlers)

    async def start(self, kind: str, params: Mapping[str, Any], who: Actor, *,
                    job_id: str | None = None, total: int | None = None,
                    checkpoint: Mapping[str, Any] | None = None,
                    shown: Mapping[str, Any] | None = None) -> JobView:
        """Store the job ``queued`` and take it if this process has room. ``UnknownKind``
        for a kind without handler; the kind's check's error for bad params.

        Beyond the contract, for starters that prepare a job before it runs (the bulk
        补发 claims its records under the job's id): ``job_id``, a known ``total``, a
        first ``checkpoint``, and ``shown``, what readers see instead of the masked params.
        """
        if kind not in self._handlers:
            raise UnknownKind(kind)
        check = self._checks.get(kind)
        resume = plain(dict(check(params) if check is not None else params))
        job_id = job_id or new_id()
        await self._ensure()
        await self.store.insert(id=job_id, kind=kind, started_by=who.user, role=who.role,
                                params=mask_value(plain(dict(shown if shown is not None
                                                             else resume))),
                                resume=resume, total=total, checkpoint=checkpoint)
        log.info("job %s (%s) started by %s", job_id, kind, who.user)
        await self.pump()
        view = await self.get(job_id)
        assert view is not None
        return view

    async def get(self, job_id: str) -> JobView | None:
        await self._ensure()
        rec = await self.store.get(job_id)
        return None if rec is None else self._view(rec)

    async def list(self, *, kind: str | None = None, started_by: str | None = None,
                   state: str | None = None, limit: int = 50) -> builtins.list[JobView]:
        await self._ensure()
        return [self._view(r) for r in await self.store.list(
            kind=kind, started_by=started_by, state=state, limit=limit)]

    async def cancel(self, job_id: str, who: Actor) -> JobView | None:
        """Ask the job to stop (a queued one is cancelled at once); None: no such job.
        Who may cancel is the caller's rule (``api.jobs``); the caller audits."""
        await self._ensure()
        rec = await self.store.request_cancel(job_id)
        if rec is None:
            return None
        run = self._runs.get(job_id)
        if run is not None:
            run.ctx.cancel_flag = True
        log.info("job %s: cancel asked by %s", job_id, who.user)
        return self._view(rec)

    # -- beyond the contract ----------------------------------------------------------------

    async def active(self, kind: str) -> int:
        """Jobs of ``kind`` queued or running, in every process."""
        await self._ensure()
        return await self.store.active(kind)

    async def wait(self, job_id: str, *, timeout_s: float = 30.0,
                   every_s: float = 0.05) -> JobView:
        """Until the job has finished (tests, the CLI); ``TimeoutError`` after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                view = await self.get(job_id)
                if view is None:
                    raise KeyError(job_id)
                if view.finished:
                    return view
                await asyncio.sleep(every_s)

    def running_here(self) -> builtins.list[str]:
        """Ids of the jobs this process runs now."""
        return list(self._runs)

    async def open(self) -> None:
        """Take over what nobody runs (queued, or left by a stopped or dead process) now and
        every ``poll_s`` (``Hub.start``)."""
        self._closing = False
        if self._loop is None or self._loop.done():
            self._loop = asyncio.get_running_loop().create_task(self._poll(), name="jobs")

    async def close(self) -> None:
        """Stop every job this process runs: progress written, leases let go, so the next
        start (here or another process) continues them at once (``Hub.stop``). A memory
        runner's own engine is disposed too (it reconnects when used again)."""
        self._closing = True
        tasks = [t for t in (self._loop, *self._kicks) if t is not None]
        tasks += [r.task for r in self._runs.values()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None
        if self._keeper is not None:  # a private in-memory database: its connections go
            await self.engine.dispose()  # (the data stays, held by the keeper)

    async def pump(self) -> int:
        """Take free rows of the kinds this process knows, up to its room; how many."""
        if self._closing or not self._handlers:
            return 0
        taken = 0
        async with self._lock:
            room = self.limit - len(self._runs)
            if room <= 0:
                return 0
            await self._ensure()
            for job_id in await self.store.free(self._handlers, room + len(self._runs)):
                if taken >= room:
                    break
                if job_id in self._runs:
                    continue
                rec = await self.store.take(job_id, self.owner, self.lease_s)
                if rec is None:
                    continue  # another process was quicker
                self._spawn(rec)
                taken += 1
        return taken

    # -- the parts --------------------------------------------------------------------------

    async def _ensure(self) -> None:
        if not self._create_table:
            return
        async with self.engine.begin() as conn:
            table: Any = JobRow.__table__
            await conn.run_sync(lambda c: JobRow.metadata.create_all(c, tables=[table]))
        self._create_table = False

    def _view(self, rec: JobRecord) -> JobView:
        run = self._runs.get(rec.id)
        total, done, failed, skipped = rec.total, rec.done, rec.failed, rec.skipped
        if run is not None and rec.state == "running":  # fresher than the throttled row
            c = run.ctx
            total, done, failed, skipped = c.total, c.done, c.failed, c.skipped
        return JobView(id=rec.id, kind=rec.kind, state=cast(JobState, rec.state),
                       started_by=rec.started_by, role=rec.role, created_at=rec.created_at,
                       updated_at=rec.updated_at, total=total, done=done, failed=failed,
                       skipped=skipped, params=rec.params, report=rec.report, error=rec.error,
                       cancel_requested=rec.cancel_requested)

    def _spawn(self, rec: JobRecord) -> None:
        ctx = _Context(self, rec)
        task = asyncio.get_running_loop().create_task(self._run(ctx), name=f"job-{rec.id}")
        self._runs[rec.id] = _Run(ctx, task)
        task.add_done_callback(lambda _t: self._ended(rec.id))
        if rec.runs > 1:
            log.info("job %s (%s) resumed (run %d) from %s", rec.id, rec.kind, rec.runs,
                     sorted(rec.checkpoint))

    def _ended(self, job_id: str) -> None:
        self._runs.pop(job_id, None)
        if not self._closing:  # a slot is free: take what waits
            kick = asyncio.get_running_loop().create_task(self._safe_pump())
            self._kicks.add(kick)
            kick.add_done_callback(self._kicks.discard)

    async def _safe_pump(self) -> None:
        try:
            await self.pump()
        except Exception:
            log.warning("taking queued jobs failed", exc_info=True)

    async def _poll(self) -> None:
        while True:
            await self._safe_pump()
            await asyncio.sleep(self.poll_s)

    async def _run(self, ctx: _Context) -> None:
        rec = ctx.rec
        handler = self._handlers[rec.kind]
        keeper = asyncio.get_running_loop().create_task(self._keep(ctx))
        try:
            try:
                report = await handler(ctx)
            except (asyncio.CancelledError, LeaseLost):
                raise
            except Exception as exc:
                log.exception("job %s (%s) failed", rec.id, rec.kind)
                with contextlib.suppress(Exception):
                    await ctx.flush()
                await self.store.finish(rec.id, self.owner, state="failed",
                                        report=mask_value(plain(dict(ctx.checkpoint))),
                                        error=mask_text(f"{type(exc).__name__}: {exc}")[:1000])
                return
            await ctx.flush()
            state = "cancelled" if ctx.saw_cancel else "done"
            if not await self.store.finish(rec.id, self.owner, state=state,
                                           report=mask_value(plain(dict(report or {})))):
                log.warning("job %s ended here but another process holds it now", rec.id)
        except LeaseLost:
            log.warning("job %s: lease lost to another process; stopped here", rec.id)
        except asyncio.CancelledError:
            if not ctx.lost:  # a stop: keep the progress, let the next process take it
                await asyncio.shield(self._let_go(ctx))
            raise
        finally:
            keeper.cancel()

    async def _let_go(self, ctx: _Context) -> None:
        try:
            with contextlib.suppress(LeaseLost):
                await ctx.flush()
            await self.store.release(ctx.rec.id, self.owner)
        except Exception:  # the lease expires on its own
            log.warning("job %s: releasing it failed", ctx.rec.id, exc_info=True)

    async def _keep(self, ctx: _Context) -> None:
        """Renew the lease every third of its life; the renewal also reads the cancel flag.
        A lease found lost stops the job here."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                flag = await self.store.renew(ctx.rec.id, self.owner, self.lease_s)
            except Exception:
                log.warning("job %s: renewing its lease failed", ctx.rec.id, exc_info=True)
                continue
            if flag is None:
                ctx.lost = True
                run = self._runs.get(ctx.rec.id)
                if run is not None:
                    run.task.cancel()
                return
            ctx.cancel_flag = ctx.cancel_flag or flag


Counts = tuple[int | None, int, int, int]
"""(total, done, failed, skipped) of a job as its work sees it."""


async def watch(ctx: JobContext, work: Awaitable[Any], counts: Callable[[], Counts], *,
                every_s: float = 0.5, checkpoint: Callable[[], Mapping[str, Any]] | None = None
                ) -> bool:
    """Run ``work`` (a job whose progress is a callback, not items the handler loops over:
    a batch file, an import) while copying ``counts()`` into ``ctx`` every ``every_s``; a
    cancel of the job cancels ``work``. True when it was cancelled; ``work``'s exception
    otherwise propagates. A stop of the hub cancels ``work`` too (it resumes later)."""
    task = asyncio.ensure_future(work)
    # ``counts`` are absolute (a resumed file starts counting again): deltas from what the
    # job's row says so far
    last: Counts = (None, int(getattr(ctx, "done", 0)), int(getattr(ctx, "failed", 0)),
                    int(getattr(ctx, "skipped", 0)))

    async def report() -> None:
        nonlocal last
        now = counts()
        if now[0] is not None and now[0] != last[0]:
            await ctx.set_total(now[0])
        if now[1:] != last[1:] or checkpoint is not None:
            await ctx.advance(done=now[1] - last[1], failed=now[2] - last[2],
                              skipped=now[3] - last[3],
                              checkpoint=checkpoint() if checkpoint is not None else None)
        last = now

    try:
        while not task.done():
            await asyncio.wait({task}, timeout=every_s)
            await report()
            if not task.done() and await ctx.cancelled():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await report()
                return True
        await report()
        task.result()
        return False
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class RunnerJobs:
    """What a family of jobs (student batches, initial loads) shares: the durable runner it
    runs on (one of its own in memory until the hub binds its own) and the ids of the jobs
    started through it, for ``wait``."""

    def __init__(self, runner: JobRunner | None = None) -> None:
        self._runner = runner
        self.started: list[str] = []
        """Ids of the jobs started through this object (``wait``)."""

    @property
    def runner(self) -> JobRunner:
        if self._runner is None:
            self._runner = JobRunner.memory()
        return self._runner

    async def wait(self, *, timeout_s: float = 60) -> None:
        """Until every job started here has ended (tests, shutdown)."""
        for job_id in self.started:
            await self.runner.wait(job_id, timeout_s=timeout_s)
