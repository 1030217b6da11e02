"""Queue and exchange names of one namespace, as plain strings (no broker objects).

The runtime needs only ``queue(route)``; ``broker.topology.Names`` adds the
RabbitMQ declarations on top of the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QueueNames"]


@dataclass(frozen=True)
class QueueNames:
    """Pure naming of every exchange and queue in one namespace (default ``hub``)."""

    ns: str = "hub"

    def queue(self, route: str) -> str:
        return f"{self.ns}.q.{route}"

    def dlq(self, route: str) -> str:
        return f"{self.ns}.dlq.{route}"

    def wait(self, tier_ms: int) -> str:
        return f"{self.ns}.wait.{tier_ms}ms"
