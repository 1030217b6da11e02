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
from adapters.core.port import CorePort
from adapters.difficulty.port import DifficultyPort
from adapters.tax.port import TaxPort
from adapters.union.port import UnionPort
from adapters.warnings.port import DepartmentPort
from config.settings import HubSettings
from kernel.deps import KernelDeps, Publisher
from kernel.health import StoreHealth
from kernel.names import QueueNames
from retry.breaker import Breakers
from retry.idempotency import IdempotencyStore
from retry.memo import TtlMemo
from retry.ordering import EntityGate
from routes.difficulty import DifficultyRecords
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
from routes.union import UnionNotifyDeps
from routes.warnings import WarningDeps
from services.initial_loads import InitialLoadJobs
from services.resend_claims import MemoryResendClaims, ResendClaims
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
