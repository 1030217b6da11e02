"""The I/O half of ``contracts.signing``: nonce stores, verification that spends a nonce
once, and an ``httpx.Auth`` that signs every request a client sends.

Used by both doors that authenticate by HMAC (channels: ``adapters.channels.auth``;
partners: ``api.callers``) and by everything that calls them (the hub's result
pushes to channels, simulators, tools, tests).

A nonce is remembered for ``2 * max_skew_s``, the whole time its timestamp could
still be accepted, under a scope (the channel's name; ``partner:<name>`` for a
partner), and is only spent once the signature is good, so a forger cannot burn a
caller's nonces.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from typing import Protocol

import httpx
from redis.asyncio import Redis

from contracts.errors import PartnerUnavailable
from contracts.signing import (
    DEFAULT_MAX_SKEW_S,
    PARTNER_HEADERS,
    HeaderNames,
    SignatureRefused,
    check_request,
    signed_headers,
)

__all__ = ["MemoryNonceStore", "NonceStore", "RedisNonceStore", "SignedAuth", "target_of",
           "verify_signed"]


class NonceStore(Protocol):
    """Remembers used nonces per scope (a channel, a partner) for ``ttl_s``."""

    async def seen(self, channel: str, nonce: str, ttl_s: int) -> bool:
        """True when ``nonce`` was already used; otherwise records it. Atomic."""
        ...


class MemoryNonceStore:
    """One process's nonces (tests, single-process development)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[tuple[str, str], float] = {}
        self._writes = 0

    async def seen(self, channel: str, nonce: str, ttl_s: int) -> bool:
        # No await between the check and the write: atomic on one event loop.
        now = self._clock()
        key = (channel, nonce)
        until = self._until.get(key)
        if until is not None and until > now:
            return True
        self._until[key] = now + ttl_s
        self._writes += 1
        if self._writes % 1024 == 0:
            self._until = {k: u for k, u in self._until.items() if u > now}
        return False


class RedisNonceStore:
    """Nonces shared by every hub replica: ``SET <prefix><scope>:<nonce> 1 NX EX ttl``."""

    def __init__(self, redis: Redis, *, prefix: str = "hub:nonce:") -> None:
        self._r = redis
        self._prefix = prefix

    async def seen(self, channel: str, nonce: str, ttl_s: int) -> bool:
        created = await self._r.set(f"{self._prefix}{channel}:{nonce}", b"1", nx=True,
                                    ex=max(1, ttl_s))
        return not created


async def verify_signed(caller: str, secret: str | bytes, *, method: str, target: str,
                        headers: Mapping[str, str], body: bytes, nonces: NonceStore,
                        names: HeaderNames, max_skew_s: int = DEFAULT_MAX_SKEW_S,
                        now: float | None = None, scope: str | None = None) -> None:
    """Return when the request is ``caller``'s own, fresh and not replayed; else raise
    ``SignatureRefused`` (401, naming the header).

    ``headers`` is any mapping (lower-cased here). ``PartnerUnavailable`` when the
    nonce store cannot answer (answer 503: authenticity could not be established).
    ``scope`` keys the nonce (default: ``caller``).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    nonce = check_request(secret, method=method, target=target, caller=caller, headers=lower,
                          body=body, names=names, max_skew_s=max_skew_s, now=now)
    try:
        replayed = await nonces.seen(scope or caller, nonce, 2 * max_skew_s)
    except Exception as exc:
        raise PartnerUnavailable(f"nonce store unavailable: {type(exc).__name__}",
                                 partner="redis") from exc
    if replayed:
        raise SignatureRefused(names.nonce, "already used (replayed request)")


def target_of(url: httpx.URL) -> str:
    """What a client signs as the target: the path and query exactly as sent."""
    return url.raw_path.decode("ascii")


class SignedAuth(httpx.Auth):
    """Signs each request of an ``httpx`` client as ``caller`` (``auth=SignedAuth(...)``).

    The signature covers the request as it leaves (method, target, body), so it cannot
    drift from what is sent. ``names``: ``PARTNER_HEADERS`` (default) or
    ``CHANNEL_HEADERS``; ``clock`` (unix seconds) is for tests.
    """

    requires_request_body = True

    def __init__(self, caller: str, secret: str | bytes, *,
                 names: HeaderNames = PARTNER_HEADERS,
                 clock: Callable[[], float] | None = None) -> None:
        self.caller = caller
        self._secret = secret
        self._names = names
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(signed_headers(
            self._secret, method=request.method, target=target_of(request.url),
            caller=self.caller, body=request.content, names=self._names,
            now=self._clock() if self._clock else None))
        yield request
