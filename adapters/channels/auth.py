"""Who is calling: per-channel authentication of citizen-channel requests (flow F1).

Two schemes, per ``ChannelConfig.auth``:

``hmac-sha256``
    The channel signs the canonical request (``contracts.signing``: method, target
    (path and query), channel name, timestamp, nonce and the body's sha256) with its
    secret (HMAC-SHA256, lowercase hex) and sends ``X-Channel-Timestamp`` (unix
    seconds), ``X-Channel-Nonce`` (16-64 of ``A-Z a-z 0-9 _ -``) and
    ``X-Channel-Signature``. A timestamp outside ``max_skew_s`` is refused, and so
    is a nonce already used (``adapters.signing.verify_signed``): a captured request
    can be neither replayed nor pointed at another path, application or channel.
``api-key``
    The channel sends its secret as ``X-Api-Key`` (weaker: no replay
    protection beyond TLS; for channels that cannot sign).

Comparisons are constant-time. Every refusal raises ``ChannelAuthError``
(401, naming the header) or ``TypeNotAllowed`` (403, naming ``type``). The same
``signed_headers`` (or ``adapters.signing.SignedAuth`` with ``CHANNEL_HEADERS``) is
used by channel simulators and by the hub when it pushes results to a channel's
callback URL (signed with that channel's secret, the callback's own method and
target), so both directions speak one scheme.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from adapters.signing import MemoryNonceStore, NonceStore, RedisNonceStore, verify_signed
from config.settings import ChannelConfig
from contracts.channels import APPLICATION_TYPES, CHANNEL_TYPES
from contracts.signing import CHANNEL_HEADERS, SignatureRefused, header
from contracts.signing import signed_headers as _signed_headers

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
    "applications_target",
    "check_type_allowed",
    "signed_headers",
    "verify_request",
]

HEADER_TIMESTAMP: Final = CHANNEL_HEADERS.timestamp
HEADER_NONCE: Final = CHANNEL_HEADERS.nonce
HEADER_SIGNATURE: Final = CHANNEL_HEADERS.signature
HEADER_API_KEY: Final = "X-Api-Key"

ChannelAuthError = SignatureRefused
"""A channel is not who it claims, or its request is stale or replayed: HTTP 401 (the
signing scheme's one refusal, ``contracts.signing.SignatureRefused``)."""


class TypeNotAllowed(ChannelAuthError):
    """An authenticated channel asked for a type that is not its own: HTTP 403."""

    code = "FORBIDDEN"
    status = 403


def applications_target(channel: str) -> str:
    """The target a channel signs to submit: ``/channels/<channel>/applications`` (what the
    AMQP door posts to in process, ``broker.channel_inbound``)."""
    return f"/channels/{quote(channel, safe='')}/applications"


def signed_headers(secret: str | bytes, body: bytes, *, method: str, target: str,
                   channel: str, now: float | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    """The three headers that authenticate ``method target`` with ``body`` as ``channel``
    (a fresh random nonce unless given)."""
    return _signed_headers(secret, method=method, target=target, caller=channel, body=body,
                           names=CHANNEL_HEADERS, now=now, nonce=nonce)


async def verify_request(channel: str, cfg: ChannelConfig, headers: Mapping[str, str],
                         body: bytes, nonces: NonceStore, *, method: str, target: str,
                         now: float | None = None) -> None:
    """Return when ``method target`` is ``channel``'s own, fresh and not replayed; else raise.

    ``headers`` is any mapping (Starlette's is case-insensitive; a plain dict is
    lower-cased here). ``PartnerUnavailable`` when the nonce store cannot answer
    (the caller should answer 503: authenticity could not be established).
    """
    secret = cfg.secret.get_secret_value().encode()
    if not secret:
        raise ChannelAuthError("channel", f"no secret is configured for {channel}")
    if cfg.auth == "api-key":
        key = header({k.lower(): v for k, v in headers.items()}, HEADER_API_KEY)
        if not hmac.compare_digest(key.encode(), secret):
            raise ChannelAuthError(HEADER_API_KEY, "wrong API key")
        return
    await verify_signed(channel, secret, method=method, target=target, headers=headers,
                        body=body, nonces=nonces, names=CHANNEL_HEADERS,
                        max_skew_s=cfg.max_skew_s, now=now)


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
