"""The idempotency store on a real Redis: ``is_done`` (what a step waiting for an earlier
one asks) is true only once that step has its final answer, never while in flight."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from config.settings import load_settings
from retry.idempotency import MemoryIdempotencyStore, RedisIdempotencyStore

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_is_done_only_after_complete(kind: str) -> None:
    redis = Redis.from_url(load_settings().redis_url)
    store = (RedisIdempotencyStore(redis, prefix=f"t{uuid.uuid4().hex[:8]}:idem:")
             if kind == "redis" else MemoryIdempotencyStore())
    try:
        assert not await store.is_done("k")  # absent
        await store.begin("k", "w1", 60)
        assert not await store.is_done("k")  # in flight
        await store.release("k", "w1")
        assert not await store.is_done("k")  # failed and released: not an answer
        await store.begin("k", "w1", 60)
        await store.complete("k", {"outcome": "rejected"}, 60)
        assert await store.is_done("k")  # a rejection is a final answer too
    finally:
        await redis.aclose()
