"""``build_hub``: every client, store, lane and door of the hub, built in one place.

Nothing connects here: objects are made and handed to each other; ``Hub.start``
opens the connections. Read top to bottom, this is the hub's parts list.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.channels.auth import RedisNonceStore
from adapters.channels.client import ChannelClient
from adapters.core.client import CoreClient
from adapters.core.port import CorePort
from adapters.difficulty.client import DifficultyClient
from adapters.tax.client import LeanTaxClient
from adapters.tax.ftp_fetch import FtpConfig, FtpReturnFileSource
from adapters.union.client import UnionClient
from adapters.warnings.client import DepartmentClient
from api.app import create_api
from bootstrap.hub import Hub
from broker.channel_inbound import attach_channel_inbound
from broker.rabbit import RabbitPublisher
from broker.topology import Names
from config.settings import HubSettings, refuse_default_secrets
from contracts.difficulty import SUNSHINE
from jobs.returnfiles import ReturnFileService
from retry.breaker import BreakerPolicy, Breakers
from retry.idempotency import RedisIdempotencyStore
from retry.ordering import RedisGate
from routes.lanes import ROUTES
from services.deps import Deps
from services.difficulty import SUNSHINE_CHECK_S, DifficultyDesk
from services.initial_loads import InitialLoadJobs
from services.resend_claims import RedisResendClaims
from services.union import UnionDesk
from storage.applications import ApplicationStore
from storage.audit import AuditLog
from storage.confirmations import ConfirmationStore
from storage.difficulty import DifficultyStore
from storage.journal import Journal, make_engine
from storage.returnfiles import ReturnFileStore
from storage.union import UnionStore
from storage.warnings import WarningStore

__all__ = ["ROUTES", "build_hub", "build_returnfiles"]


def build_hub(settings: HubSettings) -> Hub:
    """Wire objects; no connection is opened until ``Hub.start``.

    Raises ``ConfigError`` for a hub not explicitly in development mode whose secrets
    still hold their development defaults (``refuse_default_secrets``), or whose admin
    tokens are bad or the development ones (``api.app.hub_state``).
    """
    refuse_default_secrets(settings)
    # Connect and command timeouts: a Redis that stops answering fails a call in seconds
    # (the runtime then backs off) rather than hanging a handler.
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=64, timeout=10, socket_connect_timeout=2,
        socket_timeout=5, health_check_interval=30))
    tax = settings.partner("tax")
    core_cfg = settings.partner("core")
    names = Names(settings.namespace)
    journal = Journal(make_engine(settings.database_url), flush_ms=settings.log_flush_ms)
    core = CoreClient(core_cfg.endpoint, timeout=core_cfg.timeout_s)
    tax_ftp = ftp_source(settings)
    returnfiles = build_returnfiles(settings, journal.engine, core, tax_ftp)
    publisher = RabbitPublisher(names)
    deps = Deps(
        settings=settings,
        tax=LeanTaxClient(tax.endpoint, timeout=tax.timeout_s,
                          query_timeout=settings.query_timeout_s),
        core=core,
        idem=RedisIdempotencyStore(redis, prefix=f"{settings.namespace}:idem:"),
        journal=journal,
        publisher=publisher,
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        names=names,
        gate=RedisGate(redis, prefix=f"{settings.namespace}:order:"),
        breakers=Breakers(BreakerPolicy(settings.breaker_threshold, settings.breaker_window_s,
                                        settings.breaker_open_s)),
        applications=ApplicationStore(journal.engine),
        channels=ChannelClient(settings.channels),
        nonces=RedisNonceStore(redis, prefix=f"{settings.namespace}:nonce:"),
        tax_files=tax_ftp,
        resend_claims=RedisResendClaims(redis, prefix=f"{settings.namespace}:resend:claim:"),
        initial_loads=InitialLoadJobs(),
        confirmations=ConfirmationStore(journal.engine),
        difficulty=DifficultyStore(journal.engine),
        difficulty_partners=DifficultyClient(settings.partners),
        union=UnionStore(journal.engine),
        union_client=union_client(settings),
        warnings=WarningStore(journal.engine),
        departments=DepartmentClient(settings.warnings.departments,
                                     development=settings.env == "development"),
    )

    def channel_door(broker: Any) -> None:
        """Channels may submit over AMQP: each message goes through the HTTP door in process."""
        attach_channel_inbound(broker, names, api, channels=tuple(settings.channels))

    union_desk = UnionDesk(store=UnionStore(journal.engine), publisher=publisher,
                           audit=AuditLog(journal.engine), soon_days=settings.union.soon_days)
    sunshine = DifficultyDesk(store=DifficultyStore(journal.engine), publisher=publisher,
                              audit=AuditLog(journal.engine), partners=deps.difficulty_partners)
    hub = Hub(settings=settings, deps=deps, routes=ROUTES, redis=redis, publisher=publisher,
              names=names, attachments=(channel_door,), returnfiles=returnfiles,
              tickers=(("union-clock", settings.union.check_s, union_desk.sweep),
                       *((("difficulty-sunshine", SUNSHINE_CHECK_S, sunshine.sunshine_tick),)
                         if SUNSHINE in settings.partners else ())))  # F7 阳光惠民, daily
    api = hub.api = create_api(deps, on_start=hub.start, on_stop=hub.stop, health=hub.health,
                               readiness=hub.readiness)
    return hub


def union_client(settings: HubSettings) -> UnionClient | None:
    """F12: the union's notice endpoint, when ``partners.trade_union`` is configured."""
    cfg = settings.partners.get("trade_union")
    if cfg is None:
        return None
    return UnionClient(cfg.endpoint, cfg.secret.get_secret_value(), timeout=cfg.timeout_s)


def ftp_source(settings: HubSettings) -> FtpReturnFileSource:
    """Tax's FTP server: return files (F5) and the batch files named in 比对 pushes."""
    rf = settings.returnfiles
    return FtpReturnFileSource(FtpConfig(
        host=rf.host, port=rf.port, user=rf.user, password=rf.password.get_secret_value(),
        root=rf.root, timeout_s=rf.timeout_s))


def build_returnfiles(settings: HubSettings, engine: AsyncEngine, core: CorePort,
                      source: FtpReturnFileSource | None = None) -> ReturnFileService:
    """F5: tax's FTP -> spool -> SQL -> 到账 batches to core (``jobs.returnfiles``)."""
    rf = settings.returnfiles
    return ReturnFileService(source or ftp_source(settings), ReturnFileStore(engine), core,
                             spool_dir=Path(rf.spool_dir), chunk_size=rf.chunk_size,
                             batch_size=rf.batch_size)
