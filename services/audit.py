"""Who did what, as the services see it: the audit log they write to and the actor they name.

Services never see the HTTP layer's principal type: anything with a ``user`` and
a ``role`` is an actor (``api.auth.Principal`` is one), so the same service runs
behind the admin API, a CLI or a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Actor", "Audit", "Caller"]


class Actor(Protocol):
    """Who asked: the audit log's actor and role."""

    @property
    def user(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class Caller:
    """An actor given by name (a job acting for whoever started it, an open test app)."""

    user: str
    role: str


class Audit(Protocol):
    """Where admin actions are recorded (``storage.audit.AuditLog``); returns the entry's id."""

    async def record(self, actor: str, role: str, action: str, target: str,
                     detail: dict[str, Any], outcome: str) -> int: ...

