"""Who may knock at the partner doors, and what a refused knock leaves behind.

Partners (core, tax) sign each call (``contracts.signing``): the headers
``X-Partner`` (its name), ``X-Partner-Timestamp``, ``X-Partner-Nonce`` and
``X-Partner-Signature`` = HMAC-SHA256 with ``settings.partners.<name>.secret`` over
the canonical request (method, target, partner name, timestamp, nonce, sha256 of the
body). Stale timestamps (``DEFAULT_MAX_SKEW_S``) and used nonces (the hub's nonce
store, Redis, scope ``partner:<name>``) are refused. A door names the partners it
takes (``/partners/core/events``: core; ``/partners/tax/callback``: tax; queries:
core); a known partner at another's door is 403.

Queries (``/queries/tax/{name}``: a person's arrears by ID number) are for a signed
partner (core asking tax) or a person with a bearer token (``api.auth``) whose role is
one of ``QUERY_ROLES``; ``readonly`` is 403.

A refusal is ``CallerRefused`` (401/403, or 503 when the nonce store cannot answer),
logged through ``RefusalLog``: one line per door, caller and field per minute, never
a journal row, so an anonymous flood costs neither the log nor the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Final

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials

from adapters.signing import verify_signed
from api.auth import Role
from api.deps import ApiState
from contracts.errors import TransientError
from contracts.signing import PARTNER_HEADERS, SignatureRefused, request_target

__all__ = ["PARTNER_PARAMETERS", "QUERY_PARTNERS", "QUERY_ROLES", "CallerRefused",
           "RefusalLog", "authenticate_partner", "authorize_query", "note", "refusals",
           "signed_by_partner", "who_knocks"]

log = logging.getLogger("hub.callers")

QUERY_ROLES: Final[frozenset[Role]] = frozenset({"caseworker", "operations", "tester",
                                                 "admin"})
"""Bearer roles that may ask F4 queries (they answer with people's arrears)."""
QUERY_PARTNERS: Final = ("core",)
"""Partners that may ask F4 queries by signature."""

PARTNER_PARAMETERS: Final = [
    {"name": name, "in": "header", "required": True, "schema": {"type": "string"},
     "description": text} for name, text in (
        (PARTNER_HEADERS.caller, "the partner's name (core, tax)"),
        (PARTNER_HEADERS.timestamp, "unix seconds, within 300 s of the hub's clock"),
        (PARTNER_HEADERS.nonce, "16-64 of A-Z a-z 0-9 _ -, never reused"),
        (PARTNER_HEADERS.signature, "hex HMAC-SHA256 with the partner's secret over "
                                    "HUB-HMAC-SHA256\\nMETHOD\\ntarget\\npartner\\n"
                                    "timestamp\\nnonce\\nsha256(body)"))]
"""The partner doors' authentication headers, for their OpenAPI documents."""


class CallerRefused(Exception):
    """Not let in: ``status`` 401 (who?), 403 (not here) or 503 (could not tell)."""

    def __init__(self, status: int, code: str, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status = status
        self.code = code
        self.field = field
        self.reason = reason

    @property
    def message(self) -> str:
        return f"{self.field}: {self.reason}"


class RefusalLog:
    """Logs a refusal once per (door, caller, field) per ``every_s``; counts the rest and
    says how many were left out on the next line of that key. At most ``max_keys`` keys
    are remembered (then the memory starts over), so a flood of made-up callers is
    bounded too."""

    def __init__(self, *, every_s: float = 60.0, max_keys: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.max_keys = max_keys
        self._clock = clock
        self._last: dict[tuple[str, str, str], tuple[float, int]] = {}

    def reset(self) -> None:
        """Forget every key (tests)."""
        self._last.clear()

    def refused(self, door: str, caller: str, status: int, field: str, reason: str) -> bool:
        """Log (or count) one refusal; True when a line was written."""
        key = (door, caller[:64], field)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if len(self._last) >= self.max_keys:
            self._last.clear()
        left_out = last[1] if last is not None else 0
        self._last[key] = (now, 0)
        log.warning("%s refused %s: %d %s: %s%s", door, caller[:64], status, field,
                    reason[:200], f" ({left_out} more like it since the last line)"
                    if left_out else "")
        return True


refusals = RefusalLog()
"""The process's refusal log (one per process: the doors share its rate limit)."""


def who_knocks(request: Request, claimed: str | None = None) -> str:
    """How a refused caller is named in the log: its claimed name, else its address."""
    if claimed:
        return claimed
    return f"anonymous@{request.client.host}" if request.client else "anonymous"


def note(door: str, request: Request, exc: CallerRefused,
         claimed: str | None = None) -> CallerRefused:
    """Log ``exc`` through ``refusals`` and give it back (``raise note(...)``)."""
    refusals.refused(door, who_knocks(request, claimed), exc.status, exc.field, exc.reason)
    return exc


async def authenticate_partner(state: ApiState, request: Request, body: bytes, *,
                               door: str, allowed: Collection[str]) -> str:
    """The name of the partner that signed this request, if it may use ``door``;
    else ``CallerRefused`` (logged, rate-limited)."""
    claimed = request.headers.get(PARTNER_HEADERS.caller or "", "").strip()
    partners = state.deps.settings.partners
    if not claimed:
        raise note(door, request, CallerRefused(401, "UNAUTHORIZED", PARTNER_HEADERS.caller
                                                or "", "header is missing"))
    if claimed not in partners:
        raise note(door, request, CallerRefused(401, "UNAUTHORIZED", PARTNER_HEADERS.caller
                                                or "", "not a partner of the hub"),
                   f"unknown:{claimed[:40]!r}")
    nonces = state.deps.nonces
    if nonces is None:
        raise note(door, request, CallerRefused(503, "UNAVAILABLE", PARTNER_HEADERS.nonce,
                                                "this hub has no nonce store"), claimed)
    try:
        await verify_signed(claimed, partners[claimed].secret.get_secret_value(),
                            method=request.method, target=request_target(request.scope),
                            headers=request.headers, body=body, nonces=nonces,
                            names=PARTNER_HEADERS, now=state.clock() if state.clock else None,
                            scope=f"partner:{claimed}")
    except SignatureRefused as exc:
        raise note(door, request, CallerRefused(401, exc.code, exc.field,
                                                exc.errors[0][1]), claimed) from None
    except TransientError as exc:
        raise note(door, request, CallerRefused(503, "UNAVAILABLE", PARTNER_HEADERS.nonce,
                                                exc.reason), claimed) from None
    if claimed not in allowed:
        raise note(door, request, CallerRefused(
            403, "FORBIDDEN", PARTNER_HEADERS.caller or "",
            f"{claimed} may not use this door; it is for {', '.join(allowed)}"), claimed)
    return claimed


def signed_by_partner(request: Request) -> bool:
    """Whether the request carries partner signature headers (else: a bearer token)."""
    return any(name in request.headers for name in (
        PARTNER_HEADERS.caller or "", PARTNER_HEADERS.signature))


async def authorize_query(state: ApiState, request: Request,
                          creds: HTTPAuthorizationCredentials | None) -> str:
    """A person asking a query: the user, if its bearer token's role is one of
    ``QUERY_ROLES``; else ``CallerRefused`` 401 (no or unknown token) or 403 (logged,
    rate-limited). Signed partners go through ``authenticate_partner`` instead."""
    who = state.auth.authenticate(creds.credentials if creds else None)
    if who is None:
        raise note("queries", request, CallerRefused(
            401, "UNAUTHORIZED", "Authorization",
            "a bearer token with a query role, or a partner signature, is required"))
    if who.role not in QUERY_ROLES:
        raise note("queries", request, CallerRefused(
            403, "FORBIDDEN", "Authorization",
            f"role {who.role} may not ask queries; one of {', '.join(sorted(QUERY_ROLES))}"),
            who.user)
    return who.user
