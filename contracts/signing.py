"""One signing scheme for everyone the hub authenticates by HMAC: channels and partners.

The signature is HMAC-SHA256 (lowercase hex) keyed with the caller's secret over
the *canonical request*: seven lines joined by ``\\n`` (UTF-8, no trailing newline)

    HUB-HMAC-SHA256
    POST                                   the method, upper case
    /partners/core/events                  the request target as sent: path, ``?query`` if any
    core                                   the caller: channel or partner name (the secret's owner)
    1795000000                             unix seconds, as sent in the timestamp header
    3f1c...                                the nonce, as sent
    e3b0c442...                            lowercase hex sha256 of the exact body bytes

so a captured request cannot be pointed at another path or application id,
replayed with another method, or presented as another caller sharing a secret.
The target is the percent-encoded path of the request line (what
``httpx.URL.raw_path`` gives a client and ``request_target`` rebuilds from an
ASGI scope); behind a proxy that rewrites paths, sign the path the hub sees.

Headers (``HeaderNames``): channels send ``X-Channel-Timestamp``, ``-Nonce``,
``-Signature`` (the channel is named by the path); partners also name themselves,
``X-Partner`` with ``X-Partner-Timestamp``, ``-Nonce``, ``-Signature``.

``check_request`` is the pure part of verification (headers present and well
formed, timestamp within ``max_skew_s``, signature right, compared in constant
time) and returns the nonce; spending it once is the nonce store's
(``adapters.signing.verify_signed``). Every refusal is ``SignatureRefused``
(401) naming the header at fault. Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from contracts.errors import PermanentError

__all__ = ["ALGORITHM", "CHANNEL_HEADERS", "DEFAULT_MAX_SKEW_S", "PARTNER_HEADERS",
           "HeaderNames", "SignatureRefused", "body_digest", "canonical_request",
           "check_request", "header", "request_target", "sign", "signed_headers", "verify"]

ALGORITHM: Final = "HUB-HMAC-SHA256"
DEFAULT_MAX_SKEW_S: Final = 300
"""How far a timestamp may be from the hub's clock, either way (seconds)."""

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TIMESTAMP = re.compile(r"^\d{1,12}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_CALLER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class HeaderNames:
    """Where a kind of caller puts its timestamp, nonce and signature (and its name)."""

    timestamp: str
    nonce: str
    signature: str
    caller: str | None = None
    """The header naming the caller; None when the path names it (channels)."""


CHANNEL_HEADERS: Final = HeaderNames("X-Channel-Timestamp", "X-Channel-Nonce",
                                     "X-Channel-Signature")
PARTNER_HEADERS: Final = HeaderNames("X-Partner-Timestamp", "X-Partner-Nonce",
                                     "X-Partner-Signature", caller="X-Partner")


class SignatureRefused(PermanentError):
    """The caller is not who it claims, or the request is stale or replayed: HTTP 401."""

    code = "UNAUTHORIZED"
    status = 401

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.errors = [(field, reason)]


# ---------------------------------------------------------------- signing


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def body_digest(body: bytes) -> str:
    """Lowercase hex sha256 of ``body`` (of ``b""`` for a request without one)."""
    return hashlib.sha256(body).hexdigest()


def canonical_request(method: str, target: str, caller: str, timestamp: str | int,
                      nonce: str, body: bytes) -> bytes:
    """The bytes that are signed (module docstring). ``ValueError`` for a line break in a
    field, which would let one canonical request pass for another."""
    fields = (ALGORITHM, method.upper(), target, caller, str(timestamp), nonce,
              body_digest(body))
    if any("\n" in f or "\r" in f for f in fields):
        raise ValueError("a field of the canonical request contains a line break")
    return "\n".join(fields).encode()


def sign(secret: str | bytes, canonical: bytes) -> str:
    """HMAC-SHA256 of ``canonical`` keyed with ``secret``, lowercase hex."""
    return hmac.new(_key(secret), canonical, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, canonical: bytes, signature: str) -> bool:
    """Whether ``signature`` (hex, any case) is ``sign(secret, canonical)``; constant time."""
    return hmac.compare_digest(sign(secret, canonical).encode(),
                               signature.strip().lower().encode("ascii", "replace"))


def signed_headers(secret: str | bytes, *, method: str, target: str, caller: str, body: bytes,
                   names: HeaderNames, now: float | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    """The headers that authenticate one request (a fresh random nonce unless given)."""
    ts = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_hex(16)
    headers = {names.timestamp: ts, names.nonce: nonce,
               names.signature: sign(secret, canonical_request(method, target, caller, ts,
                                                               nonce, body))}
    if names.caller is not None:
        headers[names.caller] = caller
    return headers


def request_target(scope: Mapping[str, Any]) -> str:
    """The request target an ASGI ``scope`` was asked for: its raw path (the path quoted
    again when the server gives none) and ``?query`` when there is one."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) and raw else \
        quote(str(scope.get("path", "")), safe="/:@!$&'()*+,;=-._~%")
    query = scope.get("query_string") or b""
    return f"{path}?{bytes(query).decode('latin-1')}" if query else path


# ---------------------------------------------------------------- verification


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value from a lower-cased mapping; ``SignatureRefused`` when missing or blank."""
    value = headers.get(name.lower())
    if value is None or not value.strip():
        raise SignatureRefused(name, "header is missing")
    return value.strip()


def check_request(secret: str | bytes, *, method: str, target: str, caller: str,
                  headers: Mapping[str, str], body: bytes, names: HeaderNames,
                  max_skew_s: int = DEFAULT_MAX_SKEW_S, now: float | None = None) -> str:
    """The nonce of a request signed by ``caller`` with ``secret``, fresh within
    ``max_skew_s``; else ``SignatureRefused`` naming the header. ``headers`` must be
    keyed in lower case. Whether the nonce was used before is the caller's to ask."""
    if not _key(secret):
        raise SignatureRefused(names.caller or "caller", f"no secret is configured for "
                                                         f"{caller[:40]}")
    if not _CALLER.match(caller):
        raise SignatureRefused(names.caller or "caller", "not a caller name")
    ts_text = header(headers, names.timestamp)
    nonce = header(headers, names.nonce)
    signature = header(headers, names.signature)
    if not _TIMESTAMP.match(ts_text):
        raise SignatureRefused(names.timestamp, "must be unix seconds (digits only)")
    skew = int(time.time() if now is None else now) - int(ts_text)
    if abs(skew) > max_skew_s:
        when = "old" if skew > 0 else "in the future"
        raise SignatureRefused(names.timestamp, f"{abs(skew)} s {when}: outside the "
                                                f"{max_skew_s} s window")
    if not _NONCE.match(nonce):
        raise SignatureRefused(names.nonce, "must be 16-64 of A-Z a-z 0-9 _ -")
    if not _HEX64.match(signature):
        raise SignatureRefused(names.signature, "must be 64 hex characters (HMAC-SHA256)")
    try:
        canonical = canonical_request(method, target, caller, ts_text, nonce, body)
    except ValueError:
        raise SignatureRefused(names.signature, "the request target cannot be signed") from None
    if not verify(secret, canonical, signature):
        raise SignatureRefused(names.signature, "does not match the request (method, target, "
                                                "caller, timestamp, nonce, body) signed with "
                                                "the caller's secret")
    return nonce
