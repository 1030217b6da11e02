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

Nothing may wedge an entity for good. Every way a message leaves frees its
place: the runtime leaves on every outcome it records, the DLQ archiver
leaves for every dead letter it stores (including those RabbitMQ itself
dead-lettered past the delivery limit, which never reached an outcome). As a
backstop each ticket carries its own deadline (the message's age limit): a
head past its deadline is dropped by the next arrival, and waiters no longer
keep a dead head alive by renewing the FIFO's expiry.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis

__all__ = ["EntityGate", "MemoryGate", "RedisGate"]

# KEYS[1] the FIFO (list of tickets), KEYS[2] ticket -> deadline (unix seconds);
# ARGV: ticket, ttl_s, now. A ticket keeps the deadline of its first arrival; heads
# past their deadline (other than the caller) are dropped before deciding.
_ENTER = """
local ticket, now = ARGV[1], tonumber(ARGV[3])
if redis.call('HEXISTS', KEYS[2], ticket) == 0 then
  redis.call('RPUSH', KEYS[1], ticket)
  redis.call('HSET', KEYS[2], ticket, now + tonumber(ARGV[2]))
end
local head = redis.call('LINDEX', KEYS[1], 0)
while head and head ~= ticket do
  local deadline = tonumber(redis.call('HGET', KEYS[2], head) or '0')
  if deadline >= now then break end
  redis.call('LPOP', KEYS[1])
  redis.call('HDEL', KEYS[2], head)
  head = redis.call('LINDEX', KEYS[1], 0)
end
local ttl = tonumber(ARGV[2])
if redis.call('TTL', KEYS[1]) < ttl then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
if head == ticket then return 1 end
return 0
"""

_LEAVE = """
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


class EntityGate(Protocol):
    async def enter(self, route: str, entity: str, ticket: str, ttl_s: int) -> bool:
        """Take (or keep) a ticket valid for ``ttl_s``; True when it is this ticket's turn."""
        ...

    async def leave(self, route: str, entity: str, ticket: str) -> None:
        """Give the place up (idempotent: leaving twice, or without a ticket, is fine)."""
        ...


class RedisGate:
    def __init__(self, redis: Redis, prefix: str = "hub:order:") -> None:
        self._r = redis
        self._p = prefix
        self._enter = redis.register_script(_ENTER)
        self._leave = redis.register_script(_LEAVE)

    def _keys(self, route: str, entity: str) -> list[str]:
        base = f"{self._p}{route}:{entity}"
        return [base, base + ":deadline"]

    async def enter(self, route: str, entity: str, ticket: str, ttl_s: int) -> bool:
        return bool(await self._enter(keys=self._keys(route, entity),
                                      args=[ticket, ttl_s, f"{time.time():.3f}"]))

    async def leave(self, route: str, entity: str, ticket: str) -> None:
        await self._leave(keys=self._keys(route, entity), args=[ticket])


class MemoryGate:
    """Same semantics in one process, for unit tests (``now`` may be replaced)."""

    def __init__(self) -> None:
        self.fifo: dict[str, list[str]] = {}
        self.deadline: dict[str, float] = {}
        self.now = time.time

    async def enter(self, route: str, entity: str, ticket: str, ttl_s: int) -> bool:
        q = self.fifo.setdefault(f"{route}:{entity}", [])
        now = self.now()
        if ticket not in q:
            q.append(ticket)
            self.deadline[ticket] = now + ttl_s
        while q and q[0] != ticket and self.deadline.get(q[0], 0) < now:
            self.deadline.pop(q.pop(0), None)
        return q[0] == ticket

    async def leave(self, route: str, entity: str, ticket: str) -> None:
        q = self.fifo.get(f"{route}:{entity}", [])
        if ticket in q:
            q.remove(ticket)
        self.deadline.pop(ticket, None)
