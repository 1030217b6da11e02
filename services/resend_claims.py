"""Which bulk 补发 job holds a record: claims that keep two jobs off the same record.

A bulk job claims every record it selected before it resends any (one key per
record: subject and business key, hashed, so no ID number is a Redis key), holds
the claims while it runs (each expires after ``ttl_s`` unless renewed, so a hub
that dies frees its records within a minute) and releases them when it ends. A
record another running job holds is not resent: the job reports it as "in
another job" with that job's id.

``RedisResendClaims`` shares the claims between hub processes (``SET NX PX``;
renew and release only what the owner still holds, by script);
``MemoryResendClaims`` keeps them in one process (unit tests, a hub without
Redis).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis

__all__ = ["CLAIM_TTL_S", "MemoryResendClaims", "RedisResendClaims", "ResendClaims",
           "claim_key"]

CLAIM_TTL_S = 60.0
"""A claim's life without renewal; a running job renews its claims every third of it."""

_RENEW = """
for i, k in ipairs(KEYS) do
  if redis.call('get', k) == ARGV[1] then redis.call('pexpire', k, ARGV[2]) end
end
return 0
"""
_RELEASE = """
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('get', k) == ARGV[1] then n = n + redis.call('del', k) end
end
return n
"""
_BATCH = 500
"""Keys per round trip (pipeline or script call)."""


def claim_key(subject: str, business_key: str) -> str:
    """The claim's key of one record: its subject and a hash of its business key."""
    return f"{subject}:{hashlib.sha256(business_key.encode()).hexdigest()[:32]}"


class ResendClaims(Protocol):
    """Claims of records by bulk jobs; ``owner`` is the job id."""

    async def claim(self, keys: Sequence[str], owner: str, ttl_s: float) -> dict[str, str]:
        """Claim every key that is free (or ``owner``'s already) for ``ttl_s``; returns
        the keys another owner holds, each with that owner."""
        ...

    async def renew(self, keys: Sequence[str], owner: str, ttl_s: float) -> None:
        """Another ``ttl_s`` for the keys ``owner`` still holds."""
        ...

    async def release(self, keys: Sequence[str], owner: str) -> None:
        """Free the keys ``owner`` holds (others' are left alone)."""
        ...


class MemoryResendClaims:
    """The claims of one process; ``now`` may be replaced (tests)."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[str, float]] = {}
        self.now = time.monotonic

    def _owner(self, key: str) -> str | None:
        held = self.held.get(key)
        if held is None or held[1] <= self.now():
            self.held.pop(key, None)
            return None
        return held[0]

    async def claim(self, keys: Sequence[str], owner: str, ttl_s: float) -> dict[str, str]:
        others: dict[str, str] = {}
        for key in keys:
            current = self._owner(key)
            if current is None or current == owner:
                self.held[key] = (owner, self.now() + ttl_s)
            else:
                others[key] = current
        return others

    async def renew(self, keys: Sequence[str], owner: str, ttl_s: float) -> None:
        for key in keys:
            if self._owner(key) == owner:
                self.held[key] = (owner, self.now() + ttl_s)

    async def release(self, keys: Sequence[str], owner: str) -> None:
        for key in keys:
            if self._owner(key) == owner:
                del self.held[key]


class RedisResendClaims:
    """The claims in Redis, shared by every hub process of one namespace."""

    def __init__(self, redis: Redis, prefix: str = "hub:resend:claim:") -> None:
        self._r = redis
        self._p = prefix
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def claim(self, keys: Sequence[str], owner: str, ttl_s: float) -> dict[str, str]:
        ms = max(1, int(ttl_s * 1000))
        others: dict[str, str] = {}
        for start in range(0, len(keys), _BATCH):
            part = list(keys[start:start + _BATCH])
            for _ in range(3):  # a claim that expired between SET and GET: try it again
                async with self._r.pipeline(transaction=False) as pipe:
                    for key in part:
                        pipe.set(self._p + key, owner, nx=True, px=ms)
                    taken = await pipe.execute()
                lost = [k for k, ok in zip(part, taken, strict=True) if not ok]
                if not lost:
                    break
                async with self._r.pipeline(transaction=False) as pipe:
                    for key in lost:
                        pipe.get(self._p + key)
                    holders = await pipe.execute()
                part = []
                for key, holder in zip(lost, holders, strict=True):
                    who = holder.decode() if isinstance(holder, bytes) else holder
                    if who is None:
                        part.append(key)
                    elif who != owner:
                        others[key] = str(who)
                    else:  # ours already (a retried claim): keep it for ttl_s from now
                        await self._r.pexpire(self._p + key, ms)
                if not part:
                    break
            else:
                others.update({key: "?" for key in part})
        return others

    async def renew(self, keys: Sequence[str], owner: str, ttl_s: float) -> None:
        ms = max(1, int(ttl_s * 1000))
        for start in range(0, len(keys), _BATCH):
            await self._renew(keys=[self._p + k for k in keys[start:start + _BATCH]],
                              args=[owner, ms])

    async def release(self, keys: Sequence[str], owner: str) -> None:
        for start in range(0, len(keys), _BATCH):
            await self._release(keys=[self._p + k for k in keys[start:start + _BATCH]],
                                args=[owner])
