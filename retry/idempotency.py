"""Idempotency: one side effect per business fact, the same answer to every repeat.

A key moves ``absent -> inflight(owner) -> done(result)``. ``begin`` takes the
in-flight lock atomically (SET NX with a lock TTL, so a crashed owner's lock
expires and the message is worked again); ``complete`` stores the result for
the message type's TTL; ``release`` drops our own lock after a failure so a
retry can take it. Keys live in Redis and so survive a hub restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
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
    async def is_done(self, key: str) -> bool: ...


_INFLIGHT = "inflight:"
_DONE = "done:"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _Pipeliner:
    """Sends the commands issued in one event-loop turn as one pipeline.

    Under load many handlers ask Redis something in the same turn; one round
    trip for all of them costs less CPU than one each. Each caller still gets
    its own reply or error.
    """

    def __init__(self, redis: Redis) -> None:
        self._r = redis
        self._pending: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, add: Callable[[Any], Any]) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((add, fut))
        if len(self._pending) == 1:
            loop.call_soon(self._spawn)
        return await fut

    def _spawn(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        pipe = self._r.pipeline(transaction=False)
        for add, _ in batch:
            add(pipe)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), reply in zip(batch, replies, strict=True):
            if fut.done():
                continue
            if isinstance(reply, Exception):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)


class RedisIdempotencyStore:
    """One pipelined round trip per ``begin`` and ``complete`` in the common case."""

    def __init__(self, redis: Redis, prefix: str = "hub:idem:") -> None:
        self._r = redis
        self._p = prefix
        self._release = redis.register_script(_RELEASE)
        self._pipe = _Pipeliner(redis)

    async def begin(self, key: str, owner: str, lock_s: int) -> Begin:
        k = self._p + key
        if await self._pipe.call(lambda p: p.set(k, _INFLIGHT + owner, nx=True, ex=lock_s)):
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
        value = _DONE + json.dumps(result, ensure_ascii=False)
        await self._pipe.call(lambda p: p.set(self._p + key, value, ex=ttl_s))

    async def release(self, key: str, owner: str) -> None:
        await self._release(keys=[self._p + key], args=[_INFLIGHT + owner])

    async def is_done(self, key: str) -> bool:
        """The fact behind ``key`` has its final answer (done or rejected)."""
        raw = await self._pipe.call(lambda p: p.get(self._p + key))
        return bool(raw) and (raw if isinstance(raw, bytes) else str(raw).encode()
                              ).startswith(_DONE.encode())

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

    async def is_done(self, key: str) -> bool:
        v = self._get(key)
        return v is not None and v[0] == _DONE

    async def forget(self, key: str) -> None:
        self._data.pop(key, None)
