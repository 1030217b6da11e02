"""Entry point and the one place that wires the hub together.

    python main.py run            the hub: route consumers + HTTP API (default :8000)
    python main.py simulate       partner simulators (core :8101, tax :8102)
    python main.py demo           hub + simulators + a realistic scenario, then a summary
    python main.py replay PATH    send contract fixtures through a running hub, diff outputs
    python main.py migrate        alembic upgrade head
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.channels.auth import RedisNonceStore
from adapters.channels.client import ChannelClient
from adapters.core.client import CoreClient
from adapters.tax.client import LeanTaxClient
from adapters.tax.ftp_fetch import FtpConfig, FtpReturnFileSource
from broker.channel_inbound import attach_channel_inbound
from broker.dlq import attach_dlq_archiver
from broker.rabbit import RabbitPublisher, attach_routes, make_broker
from broker.topology import Names, declare_topology
from config.settings import ConfigError, HubSettings, load_settings
from contracts.masking import MaskingFilter
from retry.breaker import BreakerPolicy, Breakers
from retry.errors import HubError
from retry.idempotency import RedisIdempotencyStore
from retry.ordering import RedisGate
from routes.deps import Deps
from routes.lanes import ROUTES
from routes.returnfiles import ArrivalSink, ReturnFileService
from routes.runtime import Route
from storage.applications import ApplicationStore
from storage.deadletters import DeadLetterStore
from storage.journal import Journal, make_engine
from storage.returnfiles import ReturnFileStore

__all__ = ["Hub", "build_hub", "configure_logging", "main"]

log = logging.getLogger("hub")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


@dataclass
class Hub:
    """Everything the hub process owns; ``start``/``stop`` do all the I/O."""

    settings: HubSettings
    deps: Deps
    routes: tuple[Route, ...]
    redis: Redis
    api: FastAPI = field(init=False)
    attachments: list[Callable[[Any], None]] = field(default_factory=list)
    returnfiles: ReturnFileService | None = None
    _broker: Any = None
    _watchdog: asyncio.Task[None] | None = None
    _poller: asyncio.Task[None] | None = None
    _poller_stop: asyncio.Event = field(default_factory=asyncio.Event)
    _lost: bool = False
    PUBLISH_FAILURES_LIMIT = 20

    def __post_init__(self) -> None:
        from api.app import create_api
        self.api = create_api(self.deps, on_start=self.start, on_stop=self.stop,
                              health=self.health)

    async def start(self) -> None:
        await self.deps.journal.start()
        await self._start_broker()
        self._watchdog = asyncio.create_task(self._watch(), name="broker-watchdog")
        if self.returnfiles is not None and self.settings.returnfiles.enabled:
            self._poller_stop.clear()
            self._poller = asyncio.create_task(self.returnfiles.run_poller(
                self.settings.returnfiles.poll_s, stop=self._poller_stop), name="returnfiles")

    async def _start_broker(self) -> None:
        s = self.settings
        broker = make_broker(s.amqp_url, on_reconnected=self._on_reconnected)
        self._broker = broker
        self.deps.publisher = RabbitPublisher(broker, self.deps.names)
        await broker.connect()
        await declare_topology(broker, self.deps.names,
                               [(r.name, r.bindings) for r in self.routes], s.delay_tiers_ms)
        attach_routes(broker, self.routes, self.deps, s.prefetch)
        attach_dlq_archiver(broker, self.deps.names, [r.name for r in self.routes],
                            DeadLetterStore(self.deps.journal.engine),
                            partners={r.name: r.partner for r in self.routes})
        for attach in self.attachments:
            attach(broker)
        await broker.start()

    def _on_reconnected(self, *_: Any) -> None:
        # aio-pika restores channels, but consumers on quorum queues that were not yet
        # available come back closed: the watchdog rebuilds the whole client instead.
        self._lost = True

    async def _broker_ok(self) -> bool:
        """The connection answers and the publishing channel still works."""
        if self._broker is None or self._lost:
            return False
        try:
            if not await self._broker.ping(timeout=2.0):
                return False
            await self._broker.declare_exchange(self.deps.names.work)
            pub = self.deps.publisher
            return getattr(pub, "consecutive_failures", 0) < self.PUBLISH_FAILURES_LIMIT
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
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None
        await self.deps.journal.stop()
        await self.deps.tax.aclose()
        await self.deps.core.aclose()
        if self.deps.channels is not None:
            await self.deps.channels.aclose()
        await self.redis.aclose()
        await self.deps.journal.engine.dispose()

    async def health(self) -> dict[str, Any]:
        broker_ok = bool(self._broker and await self._broker.ping(timeout=2.0))
        try:
            redis_ok = bool(await self.redis.ping())
        except Exception:
            redis_ok = False
        ok = broker_ok and redis_ok
        return {"status": "ok" if ok else "degraded", "broker": broker_ok, "redis": redis_ok}


def build_hub(settings: HubSettings) -> Hub:
    """Wire objects; no connection is opened until ``Hub.start``."""
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=64, timeout=10))
    tax = settings.partner("tax")
    core = settings.partner("core")
    deps = Deps(
        settings=settings,
        tax=LeanTaxClient(tax.endpoint, timeout=tax.timeout_s,
                          query_timeout=settings.query_timeout_s),
        core=CoreClient(core.endpoint, timeout=core.timeout_s),
        idem=RedisIdempotencyStore(redis, prefix=f"{settings.namespace}:idem:"),
        journal=Journal(make_engine(settings.database_url), flush_ms=settings.log_flush_ms),
        publisher=None,  # type: ignore[arg-type]  # set in Hub.start, once the broker exists
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        names=Names(settings.namespace),
        gate=RedisGate(redis, prefix=f"{settings.namespace}:order:"),
        breakers=Breakers(BreakerPolicy(settings.breaker_threshold, settings.breaker_window_s,
                                        settings.breaker_open_s)),
        channels=ChannelClient(settings.channels),
        nonces=RedisNonceStore(redis, prefix=f"{settings.namespace}:nonce:"),
    )
    deps.applications = ApplicationStore(deps.journal.engine)
    returnfiles = build_returnfiles(settings, deps.journal.engine, deps.core)
    deps.tax_files = returnfiles.source
    hub = Hub(settings=settings, deps=deps, routes=ROUTES, redis=redis,
              returnfiles=returnfiles)
    hub.attachments.append(lambda broker: attach_channel_inbound(broker, deps.names, hub.api))
    return hub


def build_returnfiles(settings: HubSettings, engine: AsyncEngine,
                      core: ArrivalSink) -> ReturnFileService:
    """F5: tax's FTP -> spool -> SQL -> 到账 batches to core (``routes.returnfiles``)."""
    rf = settings.returnfiles
    source = FtpReturnFileSource(FtpConfig(
        host=rf.host, port=rf.port, user=rf.user, password=rf.password.get_secret_value(),
        root=rf.root, timeout_s=rf.timeout_s))
    return ReturnFileService(source, ReturnFileStore(engine), core,
                             spool_dir=Path(rf.spool_dir), chunk_size=rf.chunk_size,
                             batch_size=rf.batch_size)


def _fast_loop() -> None:
    """uvloop when installed: the hub is I/O-bound Python, and uvloop's loop roughly halves
    the per-message overhead of sockets and callbacks (``bench/channels.py``)."""
    with contextlib.suppress(ImportError):
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(settings: HubSettings) -> None:
    import uvicorn

    hub = build_hub(settings)
    config = uvicorn.Config(hub.api, host=settings.http_host, port=settings.http_port,
                            log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


async def poll_returnfiles_once(settings: HubSettings) -> int:
    """One poll of tax's FTP, without the broker: prints one report per file."""
    engine = make_engine(settings.database_url)
    partner = settings.partner("core")
    core = CoreClient(partner.endpoint, timeout=partner.timeout_s)
    try:
        for report in await build_returnfiles(settings, engine, core).poll_once():
            print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0
    except HubError as exc:
        print(f"returnfiles: {exc.code}: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        await core.aclose()
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the hub")
    sub.add_parser("simulate", help="run the partner simulators")
    demo = sub.add_parser("demo", help="hub + simulators + scenario, then a summary")
    demo.add_argument("--count", type=int, default=200)
    demo.add_argument("--transient-rate", type=float, default=0.10)
    demo.add_argument("--timeout", type=float, default=120.0)
    replay = sub.add_parser("replay", help="send fixtures through a running hub and diff")
    replay.add_argument("path")
    sub.add_parser("migrate", help="alembic upgrade head")
    sub.add_parser("returnfiles", help="poll tax's FTP once for return files (回盘), report")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"hub: cannot start: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    from storage.migrate import upgrade
    if args.command == "migrate":
        upgrade(settings.database_url)
        print("hub: database is at the latest revision")
        return 0
    if args.command in ("run", "demo", "returnfiles") and settings.auto_migrate:
        upgrade(settings.database_url)
    if args.command == "run":
        _fast_loop()
        asyncio.run(serve(settings))
        return 0
    if args.command == "returnfiles":
        return asyncio.run(poll_returnfiles_once(settings))
    if args.command == "simulate":
        from tools.simulate import run_simulators
        asyncio.run(run_simulators(settings))
        return 0
    if args.command == "demo":
        from tools.demo import run_demo
        return int(asyncio.run(run_demo(settings, count=args.count,
                                    transient_rate=args.transient_rate, timeout=args.timeout)))
    from tools.replay import run_replay
    return int(asyncio.run(run_replay(settings, args.path)))


if __name__ == "__main__":
    sys.exit(main())
