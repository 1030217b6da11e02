"""The hub process's lifecycle: start, stop, broker watchdog, liveness and readiness.

Built by ``bootstrap.wiring.build_hub`` with everything it owns; it opens no
connection until ``start`` and builds no object besides the broker client
(which it rebuilds after a loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text

from broker.dlq import attach_dlq_archiver
from broker.failover import reachable_node
from broker.link import AmqpLink
from broker.rabbit import RabbitPublisher, make_broker
from broker.topology import Names, declare_topology
from config.settings import HubSettings
from jobs.returnfiles import ReturnFileService
from kernel.runtime import Route
from services.deps import Deps
from services.live_state import instrument
from storage.deadletters import DeadLetterStore

__all__ = ["READY_TIMEOUT_S", "Hub", "within"]

log = logging.getLogger("hub")

Attachment = Callable[[Any], None]
"""Something more to wire on every new broker client (the channel AMQP door)."""

READY_TIMEOUT_S = 2.0
"""How long each readiness check may take: a dependency slower than that is not ready."""


async def within(check: Awaitable[Any], timeout_s: float) -> bool:
    """``check`` answered truthy within ``timeout_s``; a failure or a timeout is ``False``."""
    try:
        return bool(await asyncio.wait_for(check, timeout_s))
    except Exception:
        return False


async def _tick(check: Callable[[], Awaitable[Any]], every_s: float) -> None:
    """Run ``check`` every ``every_s`` seconds until cancelled; a failure is logged."""
    while True:
        try:
            await check()
        except Exception as exc:  # a store down: the next round tries again
            log.warning("periodic check failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(every_s)


@dataclass
class Hub:
    """Everything the hub process owns; ``start``/``stop`` do all the I/O."""

    settings: HubSettings
    deps: Deps
    routes: tuple[Route, ...]
    redis: Redis
    publisher: RabbitPublisher
    names: Names
    attachments: Sequence[Attachment] = ()
    returnfiles: ReturnFileService | None = None
    tickers: Sequence[tuple[str, float, Callable[[], Awaitable[Any]]]] = ()
    """Periodic checks of the hub process: (name, every_s, check); the F12 case clock's
    breach checker (``services.union.UnionDesk.sweep``)."""
    _ticks: list[asyncio.Task[None]] = field(default_factory=list)
    _broker: Any = None
    _link: AmqpLink | None = None
    _watchdog: asyncio.Task[None] | None = None
    _poller: asyncio.Task[None] | None = None
    _poller_stop: asyncio.Event = field(default_factory=asyncio.Event)
    _lost: bool = False
    _metrics_off: Callable[[], None] = lambda: None
    api: FastAPI = field(init=False)
    """The HTTP API whose lifespan starts and stops this hub (set by ``build_hub``)."""
    PUBLISH_FAILURES_LIMIT = 20

    async def start(self) -> None:
        self._metrics_off = instrument(self.deps)  # hub_partner_call_seconds
        await self.deps.journal.start()
        await self._start_broker()
        self._watchdog = asyncio.create_task(self._watch(), name="broker-watchdog")
        if self.returnfiles is not None and self.settings.returnfiles.enabled:
            self._poller_stop.clear()
            self._poller = asyncio.create_task(self.returnfiles.run_poller(
                self.settings.returnfiles.poll_s, stop=self._poller_stop), name="returnfiles")
        self._ticks = [asyncio.create_task(_tick(self.deps.metrics.ticked(name, every, check),
                                                 every), name=name)  # last run: kernel.metrics
                       for name, every, check in self.tickers]
        if self.deps.jobs is not None:  # resume durable jobs left running or queued
            await self.deps.jobs.open()

    async def _start_broker(self) -> None:
        s = self.settings
        node = await reachable_node(s.amqp_url, s.amqp_failover_urls)  # a cluster's live node
        broker = make_broker(node, on_reconnected=self._on_reconnected)
        self._broker = broker
        await broker.connect()
        await declare_topology(broker, self.names,
                               [(r.name, r.bindings) for r in self.routes], s.delay_tiers_ms)
        link = AmqpLink(node, self.names, self.routes, self.deps, s.prefetch,
                        on_lost=self._on_reconnected)
        self._link = link
        await link.open()
        self.publisher.bind(broker, link.publish_channel)
        attach_dlq_archiver(broker, self.names, [r.name for r in self.routes],
                            DeadLetterStore(self.deps.journal.engine),
                            partners={r.name: r.partner for r in self.routes},
                            gate=self.deps.gate)
        for attach in self.attachments:
            attach(broker)
        await broker.start()
        await link.consume()

    def _on_reconnected(self, *_: Any) -> None:
        # aio-pika restores channels, but consumers on quorum queues that were not yet
        # available come back closed: the watchdog rebuilds the whole client instead.
        self._lost = True

    async def _broker_ok(self) -> bool:
        """The connection answers and the publishing channel still works."""
        if self._broker is None or self._lost or self._link is None or not self._link.ok():
            return False
        try:
            if not await self._broker.ping(timeout=2.0):
                return False
            await self._broker.declare_exchange(self.names.work)
            return self.publisher.consecutive_failures < self.PUBLISH_FAILURES_LIMIT
        except Exception:
            return False

    async def _watch(self, every_s: float = 2.0, after: int = 2) -> None:
        """Rebuild the broker client when the broker went away and did not come back whole.

        aio-pika reconnects the connection, but a publishing channel closed under
        load can stay closed; rather than publish into it for ever, start afresh.
        Unacked deliveries return to their queues and are absorbed by idempotency.
        """
        bad = 0
        while True:
            await asyncio.sleep(every_s)
            bad = 0 if await self._broker_ok() else bad + 1
            if bad < after and not self._lost:
                continue
            log.warning("broker client unhealthy %d times; reconnecting", bad)
            old, self._broker = self._broker, None
            old_link, self._link = self._link, None
            self.publisher.bind(None)
            with contextlib.suppress(Exception):
                if old_link is not None:
                    await asyncio.wait_for(old_link.close(), 15)
            with contextlib.suppress(Exception):
                if old is not None:
                    await asyncio.wait_for(old.stop(), 10)
            try:
                self._lost = False
                await self._start_broker()
                bad = 0
            except Exception as exc:  # broker still down: try again on the next round
                log.warning("reconnect failed: %s", exc)

    async def stop(self) -> None:
        if self.deps.jobs is not None:  # progress kept, leases let go: the next start resumes
            await self.deps.jobs.close()
        self._metrics_off()
        await self.deps.live.aclose()
        for task in self._ticks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ticks = []
        if self._poller is not None:
            self._poller_stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._poller, 30)
            self._poller = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._link is not None:
            await self._link.close()  # in-flight deliveries finish before the publisher goes
            self._link = None
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None
            self.publisher.bind(None)
        await self.deps.journal.stop()
        await self.deps.tax.aclose()
        await self.deps.core.aclose()
        if self.deps.channels is not None:
            await self.deps.channels.aclose()
        if self.deps.difficulty_partners is not None:
            await self.deps.difficulty_partners.aclose()
        if self.deps.union_client is not None:
            await self.deps.union_client.aclose()
        if self.deps.transfer_platform is not None:
            await self.deps.transfer_platform.aclose()
        if self.deps.departments is not None:
            await self.deps.departments.aclose()
        for client in (self.deps.pharmacy, self.deps.supervision, self.deps.prescription):
            if client is not None:  # F11
                await client.aclose()
        if self.deps.finance is not None:  # F10
            await self.deps.finance.aclose()
        if self.deps.voucher is not None:  # F13
            await self.deps.voucher.partners.aclose()
        for recon_side in (self.deps.institutions, self.deps.core_ledger):  # F14
            if recon_side is not None:
                await recon_side.aclose()
        if self.deps.insurer is not None:  # F15
            await self.deps.insurer.aclose()
        await self.redis.aclose()
        await self.deps.journal.engine.dispose()

    async def health(self) -> dict[str, Any]:
        """Liveness that names what is degraded: ``/health`` stays 200 while the process
        serves (a restart would not help), but says ``degraded`` and lists in ``down`` the
        broker, Redis or database that does not answer (the readiness checks), never a
        bare "ok" then."""
        checks = await self.readiness()
        down = [name for name, ok in checks.items() if not ok]
        return {"status": "degraded" if down else "ok", **checks,
                **({"down": down} if down else {})}

    async def readiness(self, timeout_s: float = READY_TIMEOUT_S) -> dict[str, bool]:
        """Can this hub do its work: the broker (a live, not lost, client that answers a
        ping), Redis (PING) and the database (``SELECT 1``), checked side by side, each
        within ``timeout_s``. ``/health/ready`` answers 503 unless all are ``True``."""
        broker, redis, database = await asyncio.gather(
            within(self._broker_ready(timeout_s), timeout_s),
            within(self.redis.ping(), timeout_s),
            within(self._database_ready(), timeout_s))
        return {"broker": broker, "redis": redis, "database": database}

    async def _broker_ready(self, timeout_s: float) -> bool:
        broker = self._broker
        link = self._link
        return (broker is not None and not self._lost and link is not None and link.ok()
                and bool(await broker.ping(timeout=timeout_s)))

    async def _database_ready(self) -> bool:
        async with self.deps.journal.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
