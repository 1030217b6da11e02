"""The console's session: a signed cookie naming the principal, its CSRF token, its age.

The console signs in with the admin API's role tokens (``api.auth``); the token itself
is never kept. The cookie holds the user, the role, the first hex digits of the token's
hash (so a session dies with its token when the hub's tokens change) and a random CSRF
token, signed with ``console_secret`` (``itsdangerous``: tampering is detected, the age
is checked on every read). A visitor who has not signed in gets a session without a user,
so the login form is CSRF-protected as well (no login CSRF). Logging out clears it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Final

from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.auth import LOOPBACK, ROLES, Principal

__all__ = ["COOKIE", "MAX_AGE_S", "ConsoleSession", "SessionCodec", "cookie_options",
           "same_token"]

COOKIE: Final = "hub_console"
MAX_AGE_S: Final = 8 * 3600
"""A working day: after that the console asks for the token again."""
KEY_CHARS: Final = 16
_SALT: Final = "hub-console-session"


@dataclass(frozen=True)
class ConsoleSession:
    """What the cookie says: ``user``/``role`` None before signing in."""

    csrf: str
    user: str | None = None
    role: str | None = None
    key: str = ""
    """The first ``KEY_CHARS`` hex digits of the token's sha256 (``api.auth.hash_token``)."""

    @property
    def principal(self) -> Principal | None:
        if self.user is None or self.role not in ROLES:
            return None
        return Principal(self.user, self.role)

    @classmethod
    def anonymous(cls) -> ConsoleSession:
        return cls(csrf=secrets.token_urlsafe(24))

    @classmethod
    def signed_in(cls, who: Principal, digest: str) -> ConsoleSession:
        """A fresh session (and a fresh CSRF token: none from before the login survives)."""
        return cls(csrf=secrets.token_urlsafe(24), user=who.user, role=who.role,
                   key=digest[:KEY_CHARS])


class SessionCodec:
    """Signs and reads the cookie with ``secret``; a cookie older than ``max_age_s``, or
    not signed by this secret, reads as no session."""

    def __init__(self, secret: str, max_age_s: int = MAX_AGE_S) -> None:
        if not secret:
            raise ValueError("console_secret is empty: the console cannot sign sessions")
        self._s = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age_s = max_age_s

    def dumps(self, session: ConsoleSession) -> str:
        data: dict[str, Any] = {"c": session.csrf}
        if session.user is not None:
            data |= {"u": session.user, "r": session.role, "k": session.key}
        return self._s.dumps(data)

    def loads(self, cookie: str | None) -> ConsoleSession | None:
        if not cookie:
            return None
        try:
            data = self._s.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # SignatureExpired is one
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user, role, key = data.get("u"), data.get("r"), data.get("k", "")
        if user is not None and not (isinstance(user, str) and role in ROLES
                                     and isinstance(key, str)):
            return None
        return ConsoleSession(csrf=data["c"], user=user, role=role if user else None,
                              key=key if user else "")


def same_token(expected: str, given: str | None) -> bool:
    """The CSRF check, in constant time."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def cookie_options(*, development: bool, host: str, max_age_s: int = MAX_AGE_S) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, path /console; ``Secure`` unless the hub is a development
    one or listens on loopback only (plain http there: a Secure cookie would never be sent
    back)."""
    return {"key": COOKIE, "max_age": max_age_s, "path": "/console", "httponly": True,
            "samesite": "strict", "secure": not (development or host in LOOPBACK)}
