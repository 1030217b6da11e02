"""``build_hub``: every client, store, lane and door of the hub, built in one place.

Nothing connects here: objects are made and handed to each other; ``Hub.start``
opens the connections. Read top to bottom, this is the hub's parts list.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.channels.auth import RedisNonceStore
from adapters.channels.client import ChannelClient
from adapters.core.client import CoreClient
from adapters.core.port import CorePort
from adapters.difficulty.client import DifficultyClient
from adapters.finance.client import FinanceClient
from adapters.institutions.client import InstitutionsClient, LedgerClient
from adapters.insurer.client import InsurerClient
from adapters.pharmacy.client import PharmacyClient
from adapters.prescription.client import RedisReplayGuard, build_prescription_client
from adapters.prescription.port import PrescriptionPort
from adapters.supervision.client import SupervisionClient
from adapters.tax.client import LeanTaxClient
from adapters.tax.ftp_fetch import FtpConfig, FtpReturnFileSource
from adapters.transfer.client import TransferClient
from adapters.union.client import UnionClient
from adapters.voucher.client import (
    RedisRateLimiter,
    VoucherClient,
    platform_key,
    sm2_check,
)
from adapters.warnings.client import DepartmentClient
from api.app import create_api
from bootstrap.hub import Hub
from broker.channel_inbound import attach_channel_inbound
from broker.rabbit import RabbitPublisher
from broker.topology import Names
from config.settings import ConfigError, HubSettings, refuse_default_secrets
from contracts.difficulty import SUNSHINE
from contracts.drugs import PHARMACY, PRESCRIPTION, SUPERVISION
from jobs.returnfiles import ReturnFileService
from retry.breaker import BreakerPolicy, Breakers
from retry.idempotency import RedisIdempotencyStore
from retry.ordering import RedisGate
from routes.lanes import ROUTES
from services.dead_letters import RETRY_KIND, DeadLetterDesk, RetryJobRequest
from services.deps import Deps
from services.difficulty import SUNSHINE_CHECK_S, DifficultyDesk
from services.difficulty_files import DirShelf, StatusFiles
from services.drugs import DrugDesk
from services.initial_loads import InitialLoadJobs
from services.institution_recon import DAILY_CHECK_S, ReconDesk, institution_codes
from services.job_runner import JobRunner
from services.refunds import CLOSURE_CHECK_S, RefundDesk
from services.resend_claims import RedisResendClaims
from services.resend_jobs import ResendJobs
from services.resender import Resender
from services.student_batches import BatchJobs
from services.transfer import TransferDesk
from services.union import UnionDesk
from services.voucher import VoucherKit
from storage.applications import ApplicationStore
from storage.assistance import AssistanceStore
from storage.audit import AuditLog
from storage.confirmations import ConfirmationStore
from storage.deadletters import DeadLetterStore
from storage.difficulty import DifficultyStore
from storage.drugs import DrugStore
from storage.institution_recon import InstitutionReconStore
from storage.journal import Journal, make_engine
from storage.refunds import RefundStore
from storage.returnfiles import ReturnFileStore
from storage.serious_illness import SeriousIllnessStore
from storage.transfer import TransferStore
from storage.union import UnionStore
from storage.voucher import VoucherStore
from storage.warnings import WarningStore

__all__ = ["ROUTES", "build_hub", "build_returnfiles"]

log = logging.getLogger("hub.wiring")


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
    journal = Journal(make_engine(settings.database_url), flush_ms=settings.log_flush_ms,
                      subject_key=settings.subject_hash_key.get_secret_value().encode())
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
        assistance=AssistanceStore(journal.engine),
        assistance_core=core,
        union=UnionStore(journal.engine),
        union_client=union_client(settings),
        warnings=WarningStore(journal.engine),
        departments=DepartmentClient(settings.warnings.departments,
                                     development=settings.env == "development"),
        transfers=TransferStore(journal.engine),
        transfer_platform=transfer_client(settings),
        drugs=DrugStore(journal.engine),
        pharmacy=pharmacy_client(settings),
        supervision=supervision_client(settings),
        prescription=prescription_client(settings, redis),
        refunds=RefundStore(journal.engine),  # F10
        finance=finance_client(settings),
        voucher=voucher_kit(settings, journal.engine, redis),  # F13 电子凭证
        institution_recon=InstitutionReconStore(journal.engine),  # F14 对账, 单边帐
        institutions=institutions_client(settings),
        core_ledger=core_ledger_client(settings),
        serious_illness=SeriousIllnessStore(journal.engine),  # F15 大病保险
        insurer=insurer_client(settings),
        jobs=JobRunner(journal.engine),  # durable jobs (issue 15 item 8): register_jobs
    )
    register_jobs(deps)

    def channel_door(broker: Any) -> None:
        """Channels may submit over AMQP: each message goes through the HTTP door in process."""
        attach_channel_inbound(broker, names, api, channels=tuple(settings.channels))

    union_desk = UnionDesk(store=UnionStore(journal.engine), publisher=publisher,
                           audit=AuditLog(journal.engine), soon_days=settings.union.soon_days)
    sunshine = DifficultyDesk(store=DifficultyStore(journal.engine), publisher=publisher,
                              audit=AuditLog(journal.engine), partners=deps.difficulty_partners,
                              core=core)
    transfers = TransferDesk(store=TransferStore(journal.engine), publisher=publisher,
                             settings=settings.transfer, platform=deps.transfer_platform,
                             audit=AuditLog(journal.engine))
    drug_desk = DrugDesk(store=DrugStore(journal.engine), publisher=publisher, core=core,
                         settings=settings.drugs, prescription=deps.prescription,
                         pharmacy=deps.pharmacy, audit=AuditLog(journal.engine))
    hub = Hub(settings=settings, deps=deps, routes=ROUTES, redis=redis, publisher=publisher,
              names=names, attachments=(channel_door,), returnfiles=returnfiles,
              tickers=(("union-clock", settings.union.check_s, union_desk.sweep),
                       ("difficulty-status-files", settings.difficulty_files.check_s,
                        status_files(settings, journal.engine).tick),  # F7 status by file
                       ("drugs-clock", settings.drugs.check_s, drug_desk.tick),  # F11
                       *((("difficulty-sunshine", SUNSHINE_CHECK_S, sunshine.sunshine_tick),)
                         if SUNSHINE in settings.partners else ()),  # F7 阳光惠民, daily
                       *((("transfer-pull", settings.transfer.pull_s, transfers.pull_tick),)
                         if deps.transfer_platform is not None else ()),  # F9 the platform
                       *((("refunds-closures", CLOSURE_CHECK_S, RefundDesk(
                           store=RefundStore(journal.engine), publisher=publisher,
                           tax=deps.tax, finance=deps.finance,
                           audit=AuditLog(journal.engine)).closure_tick),)
                         if deps.finance is not None else ()),  # F10 销号, 旬 and month
                       *((("recon-daily", DAILY_CHECK_S, recon_desk(deps).daily_tick),)
                         if deps.institutions is not None else ())))  # F14 对账, each day
    api = hub.api = create_api(deps, on_start=hub.start, on_stop=hub.stop, health=hub.health,
                               readiness=hub.readiness)
    return hub


def status_files(settings: HubSettings, engine: AsyncEngine) -> StatusFiles:
    """F7: the status files of lists that came in as files, produced once they settle."""
    cfg = settings.difficulty_files
    return StatusFiles(store=DifficultyStore(engine),
                       shelf=DirShelf(Path(cfg.dir) / settings.namespace), drops=cfg.drops,
                       audit=AuditLog(engine))


def transfer_client(settings: HubSettings) -> TransferClient | None:
    """F9: the national transfer platform, when ``partners.transfer`` is configured."""
    cfg = settings.partners.get("transfer")
    return None if cfg is None else TransferClient(cfg)


def pharmacy_client(settings: HubSettings) -> PharmacyClient | None:
    """F11: the pharmacy ERP, when ``partners.pharmacy_erp`` is configured."""
    cfg = settings.partners.get(PHARMACY)
    return None if cfg is None else PharmacyClient(cfg)


def supervision_client(settings: HubSettings) -> SupervisionClient | None:
    """F11: the 医保监管平台, when ``partners.supervision`` is configured."""
    cfg = settings.partners.get(SUPERVISION)
    return None if cfg is None else SupervisionClient(cfg)


def prescription_client(settings: HubSettings, redis: Redis) -> PrescriptionPort | None:
    """F11: the 电子处方中心, when ``partners.prescription`` is configured, its answers'
    timestamps remembered in Redis (a replayed answer is refused). A production hub
    without the center's keys gets none: its sale gate then refuses every 处方药 (logged);
    a development hub's keys are generated (``adapters.prescription.client.dev_keys``)."""
    if PRESCRIPTION not in settings.partners:
        return None
    try:
        return build_prescription_client(settings, replay=RedisReplayGuard(
            cast(Any, redis), prefix=f"{settings.namespace}:rx:seen:"))
    except ConfigError as exc:
        if settings.env == "development":
            raise
        log.warning("F11: no prescription center client, every 处方药 sale is refused: %s",
                    exc)
        return None


def recon_desk(deps: Deps) -> ReconDesk:
    """F14: the bureau's desk for the daily run (``ReconDesk.daily_tick``)."""
    assert isinstance(deps.institution_recon, InstitutionReconStore)
    s = deps.settings
    return ReconDesk(store=deps.institution_recon, institutions=deps.institutions,
                     core_ledger=deps.core_ledger, publisher=deps.publisher,
                     hold_minutes=s.institution_recon_hold_minutes,
                     codes=tuple(institution_codes(list(s.partners))),
                     daily_hour=s.institution_recon_daily_hour)


def insurer_client(settings: HubSettings) -> InsurerClient | None:
    """F15: the 大病保险承办机构, when ``partners.insurer`` is configured."""
    cfg = settings.partners.get("insurer")
    return None if cfg is None else InsurerClient(cfg)


def finance_client(settings: HubSettings) -> FinanceClient | None:
    """F10: 用友 finance, when ``partners.erp_finance`` is configured."""
    cfg = settings.partners.get("erp_finance")
    return None if cfg is None else FinanceClient(cfg)


def voucher_kit(settings: HubSettings, engine: AsyncEngine, redis: Redis) -> VoucherKit:
    """F13: the store, the partners' client, the channels' rate limiter (Redis) and the
    issuing platform's key (``adapters.voucher.client.platform_key``)."""
    return VoucherKit(store=VoucherStore(engine), partners=VoucherClient(settings.partners),
                      limiter=RedisRateLimiter(cast(Any, redis),
                                               prefix=f"{settings.namespace}:voucher:rate:"),
                      check=sm2_check(platform_key(settings)), settings=settings.voucher)


def institutions_client(settings: HubSettings) -> InstitutionsClient | None:
    """F14: the institutions' HIS behind their gateway, when ``partners.institutions`` is
    configured."""
    cfg = settings.partners.get("institutions")
    return None if cfg is None else InstitutionsClient(cfg)


def core_ledger_client(settings: HubSettings) -> LedgerClient | None:
    """F14: the core's settlement ledger (3201/3202/9102), when ``partners.core_ledger`` is
    configured."""
    cfg = settings.partners.get("core_ledger")
    return None if cfg is None else LedgerClient("core_ledger", cfg)


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


def register_jobs(deps: Deps) -> None:
    """The kinds of durable jobs this hub runs and resumes (``services.job_runner``):
    ``dlq.retry`` (``services.dead_letters``), ``resend.bulk`` (``services.resend_jobs``),
    ``batch.students`` (``services.student_batches``), ``initial_load``
    (``services.initial_loads``)."""
    jobs, engine = deps.jobs, deps.journal.engine
    if jobs is None:
        return
    desk = DeadLetterDesk(store=DeadLetterStore(engine), audit=AuditLog(engine), idem=deps.idem,
                          names=deps.names, send=deps.publisher.requeue)
    jobs.register(RETRY_KIND, desk.retry_job,
                  check=lambda p: RetryJobRequest.model_validate(dict(p)).model_dump(
                      mode="json", exclude_none=True))
    ResendJobs(deps.resend_claims, runner=jobs).bind(  # resend.bulk
        Resender(core=deps.core, publisher=deps.publisher, journal=deps.journal,
                 audit=AuditLog(engine)), engine)
    held = deps.difficulty.held_active if isinstance(deps.difficulty, DifficultyStore) else None
    BatchJobs(runner=jobs).bind(tax=deps.settings.partner("tax"), audit=AuditLog(engine),
                                held=held)  # batch.students
    deps.initial_loads.bind(tax=deps.settings.partner("tax"), audit=AuditLog(engine),
                            runner=jobs)  # initial_load
