"""The ports a route handler may use, wired once in ``main.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.channels.port import ChannelPort
from adapters.core.port import CorePort
from adapters.tax.port import TaxPort
from broker.topology import Names
from config.settings import HubSettings
from contracts.envelope import HubMessage
from retry.breaker import Breakers
from retry.idempotency import IdempotencyStore
from retry.memo import TtlMemo
from retry.ordering import EntityGate
from storage.journal import Journal

__all__ = ["Applications", "Deps", "Publisher"]


class Publisher(Protocol):
    """Publishes with confirms and persistence; raises if the broker refuses."""

    async def publish(self, msg: HubMessage) -> None:
        """To the work exchange, routing key = ``msg.type``."""
        ...

    async def delay(self, msg: HubMessage, queue: str, delay_ms: int,
                    headers: dict[str, Any]) -> None:
        """To a wait tier; it comes back to ``queue`` after ``delay_ms``."""
        ...

    async def park(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        """To the dead-letter queue of ``queue``, with the reason in ``headers``."""
        ...

    async def requeue(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        """Straight back to the work queue ``queue`` (re-drive from the DLQ, resend)."""
        ...


class Applications(Protocol):
    """The part of the application store the lanes use (``storage.applications``)."""

    async def get(self, app_id: str) -> dict[str, Any] | None: ...

    async def set_status(self, app_id: str, status: str, *, reason_field: str | None = None,
                         reason: str | None = None, core_ref: str | None = None,
                         parts: dict[str, Any] | None = None,
                         only_if_not_final: bool = True) -> bool: ...

    async def set_parts(self, app_id: str, parts: dict[str, Any]) -> None: ...


@dataclass
class Deps:
    settings: HubSettings
    tax: TaxPort
    core: CorePort
    idem: IdempotencyStore
    journal: Journal
    publisher: Publisher
    owner: str
    names: Names
    breakers: Breakers = field(default_factory=Breakers)
    gate: EntityGate | None = None
    applications: Applications | None = None
    """Channel applications (F1); None in a hub without the channel lanes."""
    channels: ChannelPort | None = None
    nonces: Any = None
    """Channel request nonces (``adapters.channels.auth.NonceStore``)."""
    memo: TtlMemo = field(default_factory=TtlMemo)
    """Reference answers worth remembering for minutes (``retry.memo``)."""
    tax_files: Any = None
    """Tax's FTP for batch files named in pushes (``routes.compare.BatchFiles``)."""
