"""Who is calling: per-channel authentication of citizen-channel requests (flow F1).

Two schemes, per ``ChannelConfig.auth``:

``hmac-sha256``
    The channel signs ``timestamp + "\\n" + nonce + "\\n" + body`` with its
    secret (HMAC-SHA256, lowercase hex) and sends ``X-Channel-Timestamp``
    (unix seconds), ``X-Channel-Nonce`` (16-64 of ``A-Z a-z 0-9 _ -``) and
    ``X-Channel-Signature``. A timestamp outside ``max_skew_s`` is refused, and
    so is a nonce already used: a nonce is remembered for ``2 * max_skew_s``,
    the whole time its timestamp could still be accepted. The nonce is only
    spent once the signature is good, so a forger cannot burn a channel's nonces.
``api-key``
    The channel sends its secret as ``X-Api-Key`` (weaker: no replay
    protection beyond TLS; for channels that cannot sign).

Comparisons are constant-time. Every refusal raises ``ChannelAuthError``
(401, naming the header) or ``TypeNotAllowed`` (403, naming ``type``). The same
``sign``/``signed_headers`` are used by channel simulators and by the hub when
it pushes results to a channel's callback URL (signed with that channel's
secret), so both directions speak one scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from redis.asyncio import Redis

from config.settings import ChannelConfig
from contracts.channels import APPLICATION_TYPES, CHANNEL_TYPES
from contracts.errors import PartnerUnavailable, PermanentError

__all__ = [
    "HEADER_API_KEY",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "ChannelAuthError",
    "MemoryNonceStore",
    "NonceStore",
    "RedisNonceStore",
    "TypeNotAllowed",
    "allowed_types",
    "check_type_allowed",
    "sign",
    "signed_headers",
    "verify_request",
]

HEADER_TIMESTAMP: Final = "X-Channel-Timestamp"
HEADER_NONCE: Final = "X-Channel-Nonce"
HEADER_SIGNATURE: Final = "X-Channel-Signature"
HEADER_API_KEY: Final = "X-Api-Key"

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TIMESTAMP = re.compile(r"^\d{1,12}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class ChannelAuthError(PermanentError):
    """The caller is not who it claims, or the request is stale or replayed: HTTP 401."""

    code = "UNAUTHORIZED"
    status = 401

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.errors = [(field, reason)]


class TypeNotAllowed(ChannelAuthError):
    """An authenticated channel asked for a type that is not its own: HTTP 403."""

    code = "FORBIDDEN"
    status = 403


# ---------------------------------------------------------------- signing


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: str | int, nonce: str, body: bytes) -> str:
    """HMAC-SHA256 (lowercase hex) over ``timestamp\\nnonce\\nbody``."""
    message = f"{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str | bytes, body: bytes, *, now: float | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    """The three headers that authenticate ``body`` (a fresh random nonce unless given)."""
    ts = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_hex(16)
    return {HEADER_TIMESTAMP: ts, HEADER_NONCE: nonce,
            HEADER_SIGNATURE: sign(secret, ts, nonce, body)}


# ---------------------------------------------------------------- nonce stores


class NonceStore(Protocol):
    """Remembers used nonces per channel for ``ttl_s``."""

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
    """Nonces shared by every hub replica: ``SET <prefix><channel>:<nonce> 1 NX EX ttl``."""

    def __init__(self, redis: Redis, *, prefix: str = "hub:nonce:") -> None:
        self._r = redis
        self._prefix = prefix

    async def seen(self, channel: str, nonce: str, ttl_s: int) -> bool:
        created = await self._r.set(f"{self._prefix}{channel}:{nonce}", b"1", nx=True,
                                    ex=max(1, ttl_s))
        return not created


# ---------------------------------------------------------------- verification


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    if value is None or not value.strip():
        raise ChannelAuthError(name, "header is missing")
    return value.strip()


async def verify_request(channel: str, cfg: ChannelConfig, headers: Mapping[str, str],
                         body: bytes, nonces: NonceStore, *,
                         now: float | None = None) -> None:
    """Return when the request is ``channel``'s own, fresh and not replayed; else raise.

    ``headers`` is any mapping (Starlette's is case-insensitive; a plain dict is
    lower-cased here). ``PartnerUnavailable`` when the nonce store cannot answer
    (the caller should answer 503: authenticity could not be established).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    secret = cfg.secret.get_secret_value().encode()
    if not secret:
        raise ChannelAuthError("channel", f"no secret is configured for {channel}")
    if cfg.auth == "api-key":
        key = _header(lower, HEADER_API_KEY)
        if not hmac.compare_digest(key.encode(), secret):
            raise ChannelAuthError(HEADER_API_KEY, "wrong API key")
        return
    ts_text = _header(lower, HEADER_TIMESTAMP)
    nonce = _header(lower, HEADER_NONCE)
    signature = _header(lower, HEADER_SIGNATURE)
    if not _TIMESTAMP.match(ts_text):
        raise ChannelAuthError(HEADER_TIMESTAMP, "must be unix seconds (digits only)")
    skew = int(time.time() if now is None else now) - int(ts_text)
    if abs(skew) > cfg.max_skew_s:
        when = "old" if skew > 0 else "in the future"
        raise ChannelAuthError(HEADER_TIMESTAMP, f"{abs(skew)} s {when}: outside the "
                                                 f"{cfg.max_skew_s} s window")
    if not _NONCE.match(nonce):
        raise ChannelAuthError(HEADER_NONCE, "must be 16-64 of A-Z a-z 0-9 _ -")
    if not _HEX64.match(signature):
        raise ChannelAuthError(HEADER_SIGNATURE, "must be 64 hex characters (HMAC-SHA256)")
    expected = sign(secret, ts_text, nonce, body)
    if not hmac.compare_digest(expected, signature.lower()):
        raise ChannelAuthError(HEADER_SIGNATURE, "does not match the body, timestamp and "
                                                 "nonce signed with the channel's secret")
    try:
        replayed = await nonces.seen(channel, nonce, 2 * cfg.max_skew_s)
    except Exception as exc:
        raise PartnerUnavailable(f"nonce store unavailable: {type(exc).__name__}",
                                 partner="redis") from exc
    if replayed:
        raise ChannelAuthError(HEADER_NONCE, "already used (replayed request)")


def allowed_types(channel: str, cfg: ChannelConfig) -> tuple[str, ...]:
    """The types ``channel`` may submit: its configured ``types``, else the seed's list."""
    if cfg.types:
        return tuple(t for t in cfg.types if t in APPLICATION_TYPES)
    return CHANNEL_TYPES.get(channel, ())


def check_type_allowed(channel: str, cfg: ChannelConfig, app_type: str) -> None:
    """``TypeNotAllowed`` (403) unless ``app_type`` is one of ``channel``'s own types."""
    allowed = allowed_types(channel, cfg)
    if app_type not in allowed:
        raise TypeNotAllowed("type", f"{channel} may not submit {app_type}; its types: "
                                     f"{', '.join(allowed) or 'none'}")
