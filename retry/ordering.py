"""Per-entity ordering: messages about one person or unit reach a partner in arrival order.

Each partner-facing route keeps, per entity, a FIFO of message ids in Redis
(``<ns>:order:<route>:<entity>``). A message takes a ticket (its message id,
stable across retries) the first time the hub sees it and may call the
partner only while its ticket is at the head. A message behind the head goes
back to a short wait tier without spending an attempt; the head leaves the
FIFO when it reaches an outcome (delivered, rejected or dead-lettered), which
lets the next one through. So while an earlier message waits in delayed
retry, later messages for that entity wait too, and other entities flow.

Order is the order in which messages first reach a hub consumer: the order
core produced them, as long as core does not publish two changes of one
person within the same few milliseconds to two replicas at once. Nothing
leaves RabbitMQ while waiting. A dead-lettered message leaves the FIFO; an
operator's later re-drive of it is a deliberate, new, arrival.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

__all__ = ["EntityGate", "MemoryGate", "RedisGate"]

_ENTER = """
local pos = redis.call('LPOS', KEYS[1], ARGV[1])
if not pos then
  redis.call('RPUSH', KEYS[1], ARGV[1])
  pos = redis.call('LLEN', KEYS[1]) - 1
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
if pos == 0 then return 1 end
return 0
"""


class EntityGate(Protocol):
    async def enter(self, route: str, entity: str, ticket: str, ttl_s: int) -> bool:
        """Take (or keep) a ticket; True when it is this ticket's turn."""
        ...

    async def leave(self, route: str, entity: str, ticket: str) -> None: ...


class RedisGate:
    def __init__(self, redis: Redis, prefix: str = "hub:order:") -> None:
        self._r = redis
        self._p = prefix
        self._enter = redis.register_script(_ENTER)

    async def enter(self, route: str, entity: str, ticket: str, ttl_s: int) -> bool:
        return bool(await self._enter(keys=[f"{self._p}{route}:{entity}"], args=[ticket, ttl_s]))

    async def leave(self, route: str, entity: str, ticket: str) -> None:
        await self._r.lrem(f"{self._p}{route}:{entity}", 1, ticket)


class MemoryGate:
    """Same semantics in one process, for unit tests."""

    def __init__(self) -> None:
        self.fifo: dict[str, list[str]] = {}

    async def enter(self, route: str, entity: str, ticket: str, ttl_s: int) -> bool:
        q = self.fifo.setdefault(f"{route}:{entity}", [])
        if ticket not in q:
            q.append(ticket)
        return q[0] == ticket

    async def leave(self, route: str, entity: str, ticket: str) -> None:
        q = self.fifo.get(f"{route}:{entity}", [])
        if ticket in q:
            q.remove(ticket)
