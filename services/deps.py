"""The hub's ports and stores, as one object built once by the composition root.

``bootstrap.wiring.build_hub`` fills every field before anything starts; no field
is set later (the publisher keeps its identity across broker reconnections:
``broker.rabbit.RabbitPublisher.bind``). Handlers never see this type: each
declares the narrow protocol it uses (``routes.ports``, ``kernel.deps``), and
the assignments at the bottom make mypy prove this object satisfies them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapters.channels.auth import NonceStore
from adapters.channels.port import ChannelPort
from adapters.core.port import AssistanceCorePort, CorePort
from adapters.difficulty.port import DifficultyPort
from adapters.finance.port import FinancePort
from adapters.institutions.port import InstitutionsPort, LedgerPort
from adapters.insurer.port import InsurerPort
from adapters.pharmacy.port import PharmacyPort
from adapters.prescription.port import PrescriptionPort
from adapters.supervision.port import SupervisionPort
from adapters.tax.port import TaxPort
from adapters.transfer.port import TransferPlatformPort
from adapters.union.port import UnionPort
from adapters.warnings.port import DepartmentPort
from config.settings import HubSettings
from kernel.deps import KernelDeps, Publisher
from kernel.health import StoreHealth
from kernel.metrics import HubMetrics
from kernel.names import QueueNames
from retry.breaker import Breakers
from retry.idempotency import IdempotencyStore
from retry.memo import TtlMemo
from retry.ordering import EntityGate
from routes.assistance import AssistanceDeps
from routes.difficulty import DifficultyRecords
from routes.drugs import DrugLaneDeps
from routes.institution_recon import ReconDeps
from routes.ports import (
    Applications,
    BatchFiles,
    ChannelPushDeps,
    CompareDeps,
    FeedbackDeps,
    IdentityCases,
    IntakeDeps,
    PushDeps,
    SyncDeps,
    TaxSubmitDeps,
)
from routes.refunds import RefundDeps, RefundRecords
from routes.serious_illness import InsurerDeps, SeriousIllnessRecords
from routes.transfer import TransferDeps, TransferRecords
from routes.union import UnionNotifyDeps
from routes.voucher import VoucherLaneDeps
from routes.warnings import WarningDeps
from services.initial_loads import InitialLoadJobs
from services.job_runner import JobRunner
from services.live_state import LiveState
from services.resend_claims import MemoryResendClaims, ResendClaims
from services.voucher import VoucherKit
from storage.assistance import AssistanceStore
from storage.drugs import DrugStore
from storage.institution_recon import InstitutionReconStore
from storage.journal import Journal
from storage.union import UnionStore
from storage.warnings import WarningStore

__all__ = ["Deps"]


@dataclass(frozen=True)
class Deps:
    settings: HubSettings
    tax: TaxPort
    core: CorePort
    idem: IdempotencyStore
    journal: Journal
    publisher: Publisher
    owner: str
    names: QueueNames
    breakers: Breakers = field(default_factory=Breakers)
    gate: EntityGate | None = None
    applications: Applications | None = None
    """Channel applications (F1); None in a hub without the channel lanes."""
    channels: ChannelPort | None = None
    nonces: NonceStore | None = None
    """Channel request nonces; None in a hub without the channel door."""
    memo: TtlMemo = field(default_factory=TtlMemo)
    """Reference answers worth remembering for minutes (``retry.memo``)."""
    tax_files: BatchFiles | None = None
    """Tax's FTP for batch files named in pushes (``routes.compare``)."""
    health: StoreHealth = field(default_factory=StoreHealth)
    """Whether the hub's own stores answer (``kernel.health``); one per process."""
    resend_claims: ResendClaims = field(default_factory=MemoryResendClaims)
    """Which bulk 补发 job holds which record (``services.resend_claims``): Redis in the
    hub, so jobs of two hub processes exclude each other."""
    initial_loads: InitialLoadJobs = field(default_factory=InitialLoadJobs)
    """统模式 initial-load and 职工批量暂停 file jobs (``services.initial_loads``)."""
    confirmations: IdentityCases | None = None
    """Identity-confirmation cases of terminations tax held with TX402
    (``storage.confirmations``); None: a TX402 is reported to core as before."""
    difficulty: DifficultyRecords | None = None
    """F7 困难人员 lists, records, held identities, 同步日志 (``storage.difficulty``)."""
    difficulty_partners: DifficultyPort | None = None
    """F7: the 医疗救助平台 and the departments' status callbacks (``adapters.difficulty``)."""
    warnings: WarningStore | None = None
    """F8 high-expense warnings per department+month+person (``storage.warnings``)."""
    departments: DepartmentPort | None = None
    """F8: the departments' receiving endpoints (``adapters.warnings``)."""
    union: UnionStore | None = None
    """F12 union cases, timers and alerts (``storage.union``); None: no union door."""
    union_client: UnionPort | None = None
    """F12: the union's notice endpoint (``adapters.union``)."""

    assistance: AssistanceStore | None = None
    """F7 医疗救助平台: recipients' settlements, month runs, 阳光惠民 tables
    (``storage.assistance``)."""
    assistance_core: AssistanceCorePort | None = None
    """F7 医疗救助平台: core's settlements and 定点医疗机构 (H4002-H4004; the core client)."""

    drugs: DrugStore | None = None
    """F11 线上购药: catalogue, stock, orders, 对账 (``storage.drugs``); None: no drug doors."""
    pharmacy: PharmacyPort | None = None
    """F11: the pharmacy ERP (``adapters.pharmacy``)."""
    supervision: SupervisionPort | None = None
    """F11: the 医保监管平台 (``adapters.supervision``)."""
    prescription: PrescriptionPort | None = None
    """F11: the 电子处方中心 (``adapters.prescription``): the sale gate's prescription check."""

    transfers: TransferRecords | None = None
    """F9 转移接续 by application number, the pull cursor, 参保凭证 (``storage.transfer``)."""
    transfer_platform: TransferPlatformPort | None = None
    """F9: the national transfer platform (``adapters.transfer``); None: not configured."""

    refunds: RefundRecords | None = None
    """F10 退费 orders, 销号 batches, imports (``storage.refunds``); None: no refund doors."""
    finance: FinancePort | None = None
    """F10: 用友 finance (``adapters.finance``); None: ``partners.erp_finance`` not configured."""

    voucher: VoucherKit | None = None
    """F13 电子凭证: requests and vouchers' one use, the partners (core's voucher services, 省级
    凭证库, 医税平台), the channels' rate limiter, the platform's key (``services.voucher``)."""

    institution_recon: InstitutionReconStore | None = None
    """F14 对账: runs, 单边帐 cases, 9101/3202 files, notices (``storage.institution_recon``)."""
    institutions: InstitutionsPort | None = None
    """F14: the designated institutions' HIS (``adapters.institutions``, partners.institutions)."""
    core_ledger: LedgerPort | None = None
    """F14: the core's settlement ledger, 3201/3202/9102 (partners.core_ledger)."""

    serious_illness: SeriousIllnessRecords | None = None
    """F15 大病保险: shares, batches, financing notices, clues (``storage.serious_illness``)."""
    insurer: InsurerPort | None = None
    """F15: the 大病保险承办机构 (``adapters.insurer``); None: ``partners.insurer`` not set."""

    metrics: HubMetrics = field(default_factory=HubMetrics)
    """This hub's Prometheus registry and counters (``kernel.metrics``; ``/metrics``)."""
    live: LiveState = field(default_factory=LiveState)
    """Queues, rates, breakers, tickers, deadlines read on demand (``services.live_state``;
    ``/metrics``, ``GET /admin/live``)."""
    jobs: JobRunner | None = None
    """Durable background jobs in SQL (``services.job_runner``, contract ``services.jobs``):
    bulk 补发, dead-letter retry, batches, imports; None: a hub part without them."""

    @property
    def spool_dir(self) -> Path:
        return Path(self.settings.returnfiles.spool_dir)


def _satisfies(d: Deps) -> tuple[KernelDeps, TaxSubmitDeps, FeedbackDeps, SyncDeps, PushDeps,
                                 CompareDeps, IntakeDeps, ChannelPushDeps, WarningDeps]:
    """Never called: mypy checks that ``Deps`` satisfies every lane's protocol."""
    return (d, d, d, d, d, d, d, d, d)


def _satisfies_union(d: Deps) -> UnionNotifyDeps:
    """Never called: mypy checks that ``Deps`` satisfies the F12 lane's protocol."""
    return d


def _satisfies_assistance(d: Deps) -> AssistanceDeps:
    """Never called: mypy checks that ``Deps`` satisfies the F7 settlement lane's protocol."""
    return d


def _satisfies_drugs(d: Deps) -> DrugLaneDeps:
    """Never called: mypy checks that ``Deps`` satisfies the F11 lanes' protocol."""
    return d


def _satisfies_transfer(d: Deps) -> TransferDeps:
    """Never called: mypy checks that ``Deps`` satisfies the F9 lanes' protocol."""
    return d


def _satisfies_refunds(d: Deps) -> RefundDeps:
    """Never called: mypy checks that ``Deps`` satisfies the F10 lanes' protocol."""
    return d


def _satisfies_voucher(d: Deps) -> VoucherLaneDeps:
    """Never called: mypy checks that ``Deps`` satisfies the F13 lanes' protocol."""
    return d


def _satisfies_institution_recon(d: Deps) -> ReconDeps:
    """Never called: mypy checks that ``Deps`` satisfies the F14 lane's protocol."""
    return d


def _satisfies_serious_illness(d: Deps) -> InsurerDeps:
    """Never called: mypy checks that ``Deps`` satisfies the F15 lanes' protocol."""
    return d
