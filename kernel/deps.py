"""What the kernel needs from the world, as small protocols (no broker, no partner).

The runtime (``kernel.runtime``) turns a delivery into one outcome using only
these. Handlers declare their own needs in ``routes.ports``; the composition
root (``bootstrap``) builds one object that satisfies both, and mypy checks it
there.
"""

from __future__ import annotations

from typing import Any, Protocol

from contracts.envelope import HubMessage
from kernel.health import StoreHealth
from retry.breaker import Breakers
from retry.idempotency import IdempotencyStore
from retry.ordering import EntityGate
from retry.policy import RetryPolicy

__all__ = ["KernelDeps", "Publisher", "QueueNaming", "Recorder", "RuntimeSettings"]


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


class RuntimeSettings(Protocol):
    """The settings the runtime reads (``config.settings.HubSettings`` has them)."""

    @property
    def max_body_bytes(self) -> int: ...
    @property
    def inflight_lock_s(self) -> int: ...
    @property
    def idempotency_ttl_s(self) -> int: ...
    @property
    def delay_tiers_ms(self) -> tuple[int, ...]: ...

    def policy_for(self, partner: str, type_: str) -> RetryPolicy: ...


class Recorder(Protocol):
    """The journal's write side: log entries, transaction updates, partner requests."""

    async def write(self, *items: Any) -> None: ...


class QueueNaming(Protocol):
    def queue(self, route: str) -> str: ...


class KernelDeps(Protocol):
    """Everything ``kernel.runtime.process`` touches besides the handler."""

    @property
    def settings(self) -> RuntimeSettings: ...
    @property
    def idem(self) -> IdempotencyStore: ...
    @property
    def journal(self) -> Recorder: ...
    @property
    def publisher(self) -> Publisher: ...
    @property
    def owner(self) -> str: ...
    @property
    def names(self) -> QueueNaming: ...
    @property
    def breakers(self) -> Breakers: ...
    @property
    def gate(self) -> EntityGate | None: ...
    @property
    def health(self) -> StoreHealth: ...
