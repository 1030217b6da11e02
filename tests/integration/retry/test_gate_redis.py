"""The ordering gate on a real Redis: a head past its deadline no longer wedges its entity,
however often the waiters behind it come back."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from config.settings import load_settings
from retry.ordering import RedisGate

pytestmark = pytest.mark.integration


async def test_a_dead_head_expires_while_waiters_keep_asking() -> None:
    redis = Redis.from_url(load_settings().redis_url)
    gate = RedisGate(redis, prefix=f"t{uuid.uuid4().hex[:8]}:order:")
    try:
        assert await gate.enter("tax.employee", "psn:1", "head", 2)
        for _ in range(3):
            assert not await gate.enter("tax.employee", "psn:1", "next", 600)
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.2)
        assert await gate.enter("tax.employee", "psn:1", "next", 600)
        assert not await gate.enter("tax.employee", "psn:1", "third", 600)
        await gate.leave("tax.employee", "psn:1", "next")
        await gate.leave("tax.employee", "psn:1", "next")  # twice: harmless
        assert await gate.enter("tax.employee", "psn:1", "third", 600)
    finally:
        await redis.aclose()
