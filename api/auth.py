"""Who may use the admin API: bearer tokens, roles, and a record of every refusal.

Principals are configured as ``sha256(token) -> (user, role)``: the hub keeps
only hashes, so a leaked settings dump or heap snapshot does not hand out
tokens. ``HUB_ADMIN_TOKENS`` is a comma-separated list of ``token:user:role``
(a token may also be given pre-hashed as ``sha256:<64 hex>``), e.g.

    HUB_ADMIN_TOKENS="s3cret-1:alice:operations,sha256:9f86...:bob:caseworker"

Roles: ``caseworker`` (resend), ``operations`` (dead letters), ``tester``
(replay), ``readonly`` (GET only) and ``admin`` (everything). Every role can
read; ``admin`` passes every check. A missing or unknown token is answered
401; a known one outside its role 403, which is logged and written to the
audit log with outcome ``forbidden``.

Development only: ``DEV_TOKENS`` (``dev-admin``, ``dev-ops``, ...) are used by
``load_principals`` when no tokens are configured *and* the hub is explicitly in
development mode (``HUB_ENV=development``), whatever address it listens on; a
production hub (the default) without tokens refuses every request, and refuses
to start with a configured token that is one of the development tokens.
"""

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal, NoReturn, get_args

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from storage.audit import AuditLog

__all__ = ["BEARER", "DEV_TOKENS", "LOOPBACK", "READERS", "ROLES", "Authenticator", "Principal",
           "Role", "dev_principals", "hash_token", "load_principals", "principals_from_env"]

log = logging.getLogger("hub.auth")

Role = Literal["caseworker", "operations", "tester", "readonly", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
#: Roles that may read (GET): all of them.
READERS: tuple[Role, ...] = ROLES
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
MIN_TOKEN_CHARS = 16

#: Development only; see the module docstring for when they apply.
DEV_TOKENS: Mapping[str, tuple[str, Role]] = {
    "dev-admin": ("dev-admin", "admin"),
    "dev-ops": ("dev-ops", "operations"),
    "dev-caseworker": ("dev-caseworker", "caseworker"),
    "dev-tester": ("dev-tester", "tester"),
    "dev-readonly": ("dev-readonly", "readonly"),
}

BEARER = HTTPBearer(auto_error=False, description="Admin token: Authorization: Bearer <token>")
"""The bearer scheme every admin endpoint declares (one scheme in the OpenAPI document)."""


@dataclass(frozen=True)
class Principal:
    user: str
    role: Role


def hash_token(token: str) -> str:
    """The key principals are stored under: hex sha256 of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _is_hex_digest(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def principals_from_env(value: str) -> dict[str, Principal]:
    """Parse ``token:user:role,...``; raises ``ValueError`` naming the bad entry."""
    out: dict[str, Principal] = {}
    for n, raw in enumerate(value.split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        parts = entry.rsplit(":", 2)
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ValueError(f"admin token entry {n}: expected token:user:role")
        token, user, role = (p.strip() for p in parts)
        if role not in ROLES:
            raise ValueError(f"admin token entry {n} ({user}): unknown role {role!r}; "
                             f"one of {', '.join(ROLES)}")
        if token.startswith("sha256:") and _is_hex_digest(token[7:].lower()):
            digest = token[7:].lower()
        else:
            if len(token) < MIN_TOKEN_CHARS:
                log.warning("admin token of %s is shorter than %d characters", user,
                            MIN_TOKEN_CHARS)
            digest = hash_token(token)
        if digest in out:
            raise ValueError(f"admin token entry {n} ({user}): the same token is given twice")
        out[digest] = Principal(user, role)
    return out


def dev_principals() -> dict[str, Principal]:
    """The well-known development tokens. Never on a hub reachable from the network."""
    return {hash_token(t): Principal(u, r) for t, (u, r) in DEV_TOKENS.items()}


def load_principals(value: str | None, *, development: bool,
                    http_host: str = "127.0.0.1") -> dict[str, Principal]:
    """Configured tokens; else the dev tokens in development mode; else none (all 401).

    ``development`` is the explicit mode (``HubSettings.env``), never inferred from the
    bind address: ``http_host`` only decides how loudly the dev tokens are warned
    about. Outside development a configured dev token raises ``ValueError``.
    """
    if value and value.strip():
        principals = principals_from_env(value)
        if not development:
            dev = dev_principals()
            if used := sorted(p.user for k, p in principals.items() if k in dev):
                raise ValueError("a development token (dev-admin, dev-ops, ...) is configured "
                                 f"for {', '.join(used)}: not outside development mode")
        return principals
    if development:
        if http_host in LOOPBACK:
            log.warning("admin API: development mode without HUB_ADMIN_TOKENS: the "
                        "development tokens (dev-admin, dev-ops, ...) are accepted")
        else:
            log.warning("admin API: development mode without HUB_ADMIN_TOKENS on %s, not "
                        "loopback: the development tokens (dev-admin, ...) are accepted "
                        "from the network", http_host)
        return dev_principals()
    log.warning("admin API: no HUB_ADMIN_TOKENS configured; every admin request is refused")
    return {}


class Authenticator:
    """Turns a bearer token into a principal and checks roles, auditing refusals."""

    def __init__(self, principals: Mapping[str, Principal], audit: AuditLog | None) -> None:
        self._principals = dict(principals)
        self._audit = audit

    def authenticate(self, token: str | None) -> Principal | None:
        if not token:
            return None
        digest = hash_token(token)
        for key, who in self._principals.items():
            if hmac.compare_digest(key, digest):
                return who
        return None

    def require(self, *roles: Role) -> Callable[..., Awaitable[Principal]]:
        """A FastAPI dependency: the caller's principal, if its role is one of ``roles``."""
        async def dependency(
            request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        ) -> Principal:
            return await self.check(request, creds, roles)

        return dependency

    async def check(self, request: Request, creds: HTTPAuthorizationCredentials | None,
                    roles: Collection[Role]) -> Principal:
        """The caller's principal if its role is one of ``roles``; else 401 or 403 (audited).

        ``admin`` always passes. No roles given means any authenticated caller.
        """
        allowed: Collection[str] = frozenset(roles) | {"admin"} if roles else frozenset(ROLES)
        who = self.authenticate(creds.credentials if creds else None)
        if who is None:
            log.info("admin API: %s %s without a valid token from %s", request.method,
                     request.url.path, request.client.host if request.client else "?")
            raise HTTPException(401, "missing or invalid bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        if who.role not in allowed:
            await self.forbid(request, who, allowed)
        return who

    async def forbid(self, request: Request, who: Principal, allowed: Collection[str],
                     what: str = "") -> NoReturn:
        """403 for ``who`` (logged and audited as ``forbidden``): an endpoint open to every
        reader refusing one part of it (e.g. unmasked values) to roles outside ``allowed``."""
        await self._forbidden(request, who, sorted(allowed))
        raise HTTPException(403, f"role {who.role} may not {what or request.method} "
                                 f"{request.url.path}")

    async def _forbidden(self, request: Request, who: Principal, allowed: list[str]) -> None:
        log.warning("admin API: forbidden: %s (%s) %s %s; needs one of %s", who.user, who.role,
                    request.method, request.url.path, ", ".join(allowed))
        if self._audit is None:
            return
        try:
            await self._audit.record(who.user, who.role, f"{request.method} {request.url.path}",
                                     request.url.path, {"required": allowed}, "forbidden")
        except Exception:
            log.exception("admin API: could not audit a forbidden request")
