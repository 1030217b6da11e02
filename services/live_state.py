"""What the hub is doing now: queues, rates, breakers, tickers, jobs, deadlines.

One ``LiveState`` per hub (``Deps.live``) reads everything ``/metrics``
(``kernel.metrics``' scrape-time families) and ``GET /admin/live`` (the console's live
state page) show. Reading is bounded: each source has ``timeout_s``, a source that fails
or is too slow is left out (and ``hub_up{dependency}`` says 0), and a reading is kept
for ``cache_s`` so a scrape every few seconds costs one round. Concurrent callers share
one refresh.

Queue depth and consumer count come from a passive declare of each route's work queue
on the live state's own AMQP connection (opened lazily, reopened after a failure): a
passive declare of a missing queue closes its channel, which must never be the hub's
publishing channel.

``instrument`` subscribes the hub's metrics to every partner call
(``adapters.http.observe_calls``), each call labelled with the partner whose configured
endpoint its URL starts with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.http import observe_calls
from config.settings import HubSettings
from contracts.clock import now_beijing
from kernel.metrics import HubMetrics, Scraped
from kernel.names import QueueNames
from retry.breaker import Breakers
from routes.lanes import ROUTES
from services.union import timers
from storage.difficulty import DifficultySyncLogRow
from storage.ops_models import DeadLetterRow
from storage.union import UnionStore
from storage.warnings import ExpenseWarningRow

__all__ = ["OPEN_WARNING_STATUSES", "LiveDeps", "LiveState", "instrument", "partner_endpoints"]

log = logging.getLogger("hub.live")

OPEN_WARNING_STATUSES = ("pending", "queued")
"""F8 warnings not yet answered by their department."""


class _Engine(Protocol):
    @property
    def engine(self) -> AsyncEngine: ...


class LiveDeps(Protocol):
    """What the live state reads (``services.deps.Deps`` has it; ``jobs`` optional)."""

    @property
    def settings(self) -> HubSettings: ...
    @property
    def names(self) -> QueueNames: ...
    @property
    def breakers(self) -> Breakers: ...
    @property
    def journal(self) -> _Engine: ...
    @property
    def metrics(self) -> HubMetrics: ...


def partner_endpoints(settings: HubSettings) -> dict[str, str]:
    """URL prefix -> partner name, as the lanes name partners: ``partners.*`` by name, a
    channel's callback ``channel.<name>``, an F8 department ``dept.<name>``."""
    out: dict[str, str] = {}
    for name in settings.partners:
        out[settings.partner(name).endpoint] = name
    for name, ch in settings.channels.items():
        if ch.callback_url:
            out[ch.callback_url] = f"channel.{name}"
    for name, dept in settings.warnings.departments.items():
        out[f"{dept.endpoint.rstrip('/')}/warnings/{name}"] = f"dept.{name}"
    return out


def instrument(deps: LiveDeps) -> Callable[[], None]:
    """Count this hub's partner calls in its metrics; returns the call that stops it."""
    deps.metrics.watch_partners(partner_endpoints(deps.settings))
    return observe_calls(deps.metrics.on_http_call)


class LiveState:
    """Bounded, cached readings of the hub's live state (see the module docstring)."""

    def __init__(self, *, cache_s: float = 5.0, timeout_s: float = 2.0,
                 routes: Iterable[str] | None = None) -> None:
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self.routes = tuple(routes) if routes is not None else tuple(r.name for r in ROUTES)
        self._at = -1e9
        self._lock = asyncio.Lock()
        self._conn: Any = None
        self._channel: Any = None
        self._queues: dict[str, dict[str, int]] | None = None
        self._read_at: datetime | None = None

    async def refresh(self, deps: LiveDeps, *, force: bool = False) -> Scraped:
        """Read every source (at most every ``cache_s``) into ``deps.metrics.scraped``."""
        async with self._lock:
            if not force and time.monotonic() - self._at < self.cache_s:
                return deps.metrics.scraped
            engine = deps.journal.engine
            queues, dead, deadlines, syncs, jobs = await asyncio.gather(
                self._bounded(self._read_queues(deps)),
                self._bounded(_dead_letters(engine)),
                self._bounded(_deadlines(deps)),
                self._bounded(_sync_failures(engine)),
                self._bounded(_jobs(getattr(deps, "jobs", None))))
            self._queues = queues
            s = Scraped(
                dead_letters=dead, deadlines=deadlines, sync_failures=syncs,
                queue_depth=None if queues is None else {r: q["ready"] for r, q in queues.items()},
                queue_consumers=None if queues is None else {
                    r: q["consumers"] for r, q in queues.items()},
                breakers=deps.breakers.snapshot(),
                job_progress=None if jobs is None else jobs[0],
                jobs_running=None if jobs is None else jobs[1],
                up={"broker": queues is not None, "database": dead is not None})
            deps.metrics.scraped = s
            self._at = time.monotonic()
            self._read_at = now_beijing()
            return s

    async def _bounded(self, read: Awaitable[Any]) -> Any:
        try:
            return await asyncio.wait_for(read, self.timeout_s)
        except Exception as exc:
            log.info("live state: a reading failed: %s: %s", type(exc).__name__, exc)
            return None

    async def _read_queues(self, deps: LiveDeps) -> dict[str, dict[str, int]]:
        """Ready messages and consumers of each route's work queue (passive declares)."""
        try:
            channel = await self._open(deps.settings.amqp_url)
            out: dict[str, dict[str, int]] = {}
            for route in self.routes:
                try:
                    q = await channel.declare_queue(deps.names.queue(route), passive=True)
                except Exception as exc:
                    if self._conn is None or self._conn.is_closed:
                        raise
                    log.info("live state: queue of %s not readable: %s", route, exc)
                    channel = self._channel = await self._conn.channel()  # that one closed
                    continue
                res = q.declaration_result
                out[route] = {"ready": int(res.message_count or 0),
                              "consumers": int(res.consumer_count or 0)}
            return out
        except BaseException:
            await self._drop()
            raise

    async def _open(self, url: str) -> Any:
        import aio_pika

        if self._conn is None or self._conn.is_closed:
            self._conn = await aio_pika.connect(url, timeout=self.timeout_s)
            self._channel = None
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._conn.channel()
        return self._channel

    async def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self.timeout_s)

    async def aclose(self) -> None:
        """Close the AMQP connection (``Hub.stop``)."""
        async with self._lock:
            await self._drop()

    async def view(self, deps: LiveDeps) -> dict[str, Any]:
        """The JSON of ``GET /admin/live``: per route queue, consumers and rates, breakers,
        tickers with last run and next due, jobs, deadlines, which dependencies answered."""
        s = await self.refresh(deps)
        rates = deps.metrics.rates()
        routes = []
        for name in self.routes:
            q = (self._queues or {}).get(name)
            r = rates.get(name, {})
            routes.append({"route": name, "queue_depth": q["ready"] if q else None,
                           "consumers": q["consumers"] if q else None,
                           "delivered_per_s": r.get("delivered", 0.0),
                           "rates_per_s": r, "dead_letters": (s.dead_letters or {}).get(name, 0)})
        tickers = [{"name": t.name, "every_s": t.every_s, "runs": t.runs, "ok": t.ok,
                    "failures": t.failures, "last_run": _iso(t.last_run),
                    "next_due": _iso(t.next_due)}
                   for t in deps.metrics.tickers.values()]
        return {"read_at": self._read_at.isoformat() if self._read_at else None,
                "up": s.up, "routes": routes, "breakers": s.breakers, "tickers": tickers,
                "jobs": {"running": s.jobs_running, "progress": s.job_progress},
                "deadlines": None if s.deadlines is None else [
                    {"flow": f, "state": st, "count": n}
                    for (f, st), n in sorted(s.deadlines.items())],
                "sync_failures": s.sync_failures}


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, now_beijing().tzinfo).isoformat(
        timespec="seconds")


async def _dead_letters(engine: AsyncEngine) -> dict[str, int]:
    """Dead letters still parked (not retried, not archived), per route."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(DeadLetterRow.route, func.count()).where(DeadLetterRow.status == "dead")
            .group_by(DeadLetterRow.route))).all()
    return {str(route): int(n) for route, n in rows}


async def _sync_failures(engine: AsyncEngine) -> dict[str, int]:
    """Failed syncs recorded in the F7 同步日志 (003 line 1482: 同步失败...提醒预警)."""
    async with engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(DifficultySyncLogRow)
                                .where(DifficultySyncLogRow.status == "failed"))).scalar_one()
    return {"difficulty": int(n)}


async def _deadlines(deps: LiveDeps) -> dict[tuple[str, str], int]:
    """Open items by deadline state: F12 union case timers (工作日 deadlines) ``soon`` ->
    near and ``overdue`` -> past; F8 warnings not yet answered, of this month -> near and
    of an earlier month -> past (contracts/METRICS.md)."""
    engine = deps.journal.engine
    today = now_beijing().date()
    out = {(f, s): 0 for f in ("union", "warnings") for s in ("near", "past")}
    cases = await UnionStore(engine).find(open_only=True, limit=100_000)
    soon_days = deps.settings.union.soon_days
    for case in cases:
        for t in timers(case, today, soon_days=soon_days).values():
            state = {"soon": "near", "overdue": "past"}.get(t["status"])
            if state:
                out[("union", state)] += 1
    month = today.strftime("%Y%m")
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(ExpenseWarningRow.month, func.count())
            .where(ExpenseWarningRow.status.in_(OPEN_WARNING_STATUSES))
            .group_by(ExpenseWarningRow.month))).all()
    for m, n in rows:
        out[("warnings", "near" if str(m) >= month else "past")] += int(n)
    return out


async def _jobs(jobs: Any) -> tuple[dict[str, float], dict[str, int]] | None:
    """Per kind, done/total over the running jobs that know their total, and how many
    jobs run or wait (``services.jobs.Jobs``; None when the hub has no job runner)."""
    if jobs is None:
        return None
    views = [*await jobs.list(state="running", limit=500),
             *await jobs.list(state="queued", limit=500)]
    running: dict[str, int] = {}
    done: dict[str, int] = {}
    total: dict[str, int] = {}
    for v in views:
        running[v.kind] = running.get(v.kind, 0) + 1
        if v.total:
            done[v.kind] = done.get(v.kind, 0) + v.done + v.failed + v.skipped
            total[v.kind] = total.get(v.kind, 0) + v.total
    progress = {k: round(min(1.0, done[k] / total[k]), 4) for k in total}
    return progress, running

