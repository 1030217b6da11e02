"""Idempotency: one side effect per business fact, the same answer to every repeat.

A key moves ``absent -> inflight(owner) -> done(result)``. ``begin`` takes the
in-flight lock atomically (SET NX with a lock TTL, so a crashed owner's lock
expires and the message is worked again); ``complete`` stores the result for
the message type's TTL; ``release`` drops our own lock after a failure so a
retry can take it. Keys live in Redis and so survive a hub restart.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from redis.asyncio import Redis

__all__ = ["Begin", "BeginState", "IdempotencyStore", "MemoryIdempotencyStore",
           "RedisIdempotencyStore"]


class BeginState(StrEnum):
    NEW = "new"
    INFLIGHT = "inflight"
    DONE = "done"


@dataclass(frozen=True)
class Begin:
    state: BeginState
    result: dict[str, Any] | None = None


class IdempotencyStore(Protocol):
    async def begin(self, key: str, owner: str, lock_s: int) -> Begin: ...
    async def complete(self, key: str, result: dict[str, Any], ttl_s: int) -> None: ...
    async def release(self, key: str, owner: str) -> None: ...
    async def forget(self, key: str) -> None: ...


_INFLIGHT = "inflight:"
_DONE = "done:"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisIdempotencyStore:
    """One round trip per ``begin`` in the common case (SET NX succeeds)."""

    def __init__(self, redis: Redis, prefix: str = "hub:idem:") -> None:
        self._r = redis
        self._p = prefix
        self._release = redis.register_script(_RELEASE)

    async def begin(self, key: str, owner: str, lock_s: int) -> Begin:
        k = self._p + key
        if await self._r.set(k, _INFLIGHT + owner, nx=True, ex=lock_s):
            return Begin(BeginState.NEW)
        raw = await self._r.get(k)
        if raw is None:  # expired between the two calls: try once more
            if await self._r.set(k, _INFLIGHT + owner, nx=True, ex=lock_s):
                return Begin(BeginState.NEW)
            raw = await self._r.get(k) or b""
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if text.startswith(_DONE):
            return Begin(BeginState.DONE, json.loads(text[len(_DONE):]))
        if text == _INFLIGHT + owner:
            return Begin(BeginState.NEW)
        return Begin(BeginState.INFLIGHT)

    async def complete(self, key: str, result: dict[str, Any], ttl_s: int) -> None:
        await self._r.set(self._p + key, _DONE + json.dumps(result, ensure_ascii=False),
                          ex=ttl_s)

    async def release(self, key: str, owner: str) -> None:
        await self._release(keys=[self._p + key], args=[_INFLIGHT + owner])

    async def forget(self, key: str) -> None:
        await self._r.delete(self._p + key)


class MemoryIdempotencyStore:
    """For fast unit tests: same semantics, one process."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float, dict[str, Any] | None]] = {}

    def _get(self, key: str) -> tuple[str, float, dict[str, Any] | None] | None:
        v = self._data.get(key)
        if v and v[1] < time.monotonic():
            del self._data[key]
            return None
        return v

    async def begin(self, key: str, owner: str, lock_s: int) -> Begin:
        v = self._get(key)
        if v is None or v[0] == _INFLIGHT + owner:
            self._data[key] = (_INFLIGHT + owner, time.monotonic() + lock_s, None)
            return Begin(BeginState.NEW)
        if v[0] == _DONE:
            return Begin(BeginState.DONE, v[2])
        return Begin(BeginState.INFLIGHT)

    async def complete(self, key: str, result: dict[str, Any], ttl_s: int) -> None:
        self._data[key] = (_DONE, time.monotonic() + ttl_s, result)

    async def release(self, key: str, owner: str) -> None:
        v = self._get(key)
        if v and v[0] == _INFLIGHT + owner:
            del self._data[key]

    async def forget(self, key: str) -> None:
        self._data.pop(key, None)
