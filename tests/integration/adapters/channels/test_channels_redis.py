"""The Redis nonce store against the real Redis: atomic, per channel, expiring, shared."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from adapters.channels.auth import (
    HEADER_NONCE,
    ChannelAuthError,
    RedisNonceStore,
    signed_headers,
    verify_request,
)
from config.settings import ChannelConfig

pytestmark = pytest.mark.integration

_USED: list[str] = []


def _nonce() -> str:
    nonce = uuid.uuid4().hex
    _USED.append(nonce)
    return nonce


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex}:nonce:"


async def _cleanup(redis: Redis, prefix: str) -> None:
    """Only this test's keys (SCAN over a shared Redis would be slow)."""
    channels = ("my_nanjing", "gov_office", "online_hall", "hrss")
    await redis.delete(*(f"{prefix}{c}:{n}" for c in channels for n in _USED))
    _USED.clear()


async def test_a_nonce_is_used_once_per_channel(redis: Redis, prefix: str) -> None:
    store = RedisNonceStore(redis, prefix=prefix)
    try:
        nonce = _nonce()
        assert await store.seen("my_nanjing", nonce, 60) is False
        assert await store.seen("my_nanjing", nonce, 60) is True
        assert await store.seen("gov_office", nonce, 60) is False
        ttl = await redis.ttl(f"{prefix}my_nanjing:{nonce}")
        assert 0 < ttl <= 60
    finally:
        await _cleanup(redis, prefix)


async def test_concurrent_uses_admit_exactly_one(redis: Redis, prefix: str) -> None:
    stores = [RedisNonceStore(redis, prefix=prefix) for _ in range(2)]  # two "replicas"
    try:
        nonce = _nonce()
        results = await asyncio.gather(*(stores[i % 2].seen("hrss", nonce, 60)
                                         for i in range(40)))
        assert results.count(False) == 1
    finally:
        await _cleanup(redis, prefix)


async def test_a_nonce_is_forgotten_after_its_ttl(redis: Redis, prefix: str) -> None:
    store = RedisNonceStore(redis, prefix=prefix)
    try:
        nonce = _nonce()
        assert await store.seen("online_hall", nonce, 1) is False
        await redis.pexpire(f"{prefix}online_hall:{nonce}", 50)
        await asyncio.sleep(0.1)
        assert await store.seen("online_hall", nonce, 1) is False
    finally:
        await _cleanup(redis, prefix)


async def test_verification_refuses_a_replay_through_redis(redis: Redis, prefix: str) -> None:
    store = RedisNonceStore(redis, prefix=prefix)
    cfg = ChannelConfig(secret=SecretStr("mn-secret-0123456789"), max_skew_s=30)
    body = b'{"type": "resident_enroll"}'
    target = "/channels/my_nanjing/applications"
    headers = signed_headers("mn-secret-0123456789", body, method="POST", target=target,
                             channel="my_nanjing", nonce=_nonce())
    try:
        await verify_request("my_nanjing", cfg, headers, body, store, method="POST",
                             target=target)
        ttl = await redis.ttl(f"{prefix}my_nanjing:{headers[HEADER_NONCE]}")
        assert 30 < ttl <= 60  # remembered for twice the timestamp window
        with pytest.raises(ChannelAuthError) as e:
            await verify_request("my_nanjing", cfg, headers, body, store, method="POST",
                                 target=target)
        assert e.value.field == HEADER_NONCE
    finally:
        await _cleanup(redis, prefix)
