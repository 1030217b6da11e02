"""The console's plumbing: templates, the signed-in principal, the POST guard, audit.

Pages are rendered on the server (Jinja2, autoescaped) from the same services the JSON
API uses, masked the same way. Every page answer carries a strict Content-Security-Policy
(only the console's own static files: the console works offline, on an intranet without
a CDN) and ``no-store`` (pages hold personal data, masked or not).

A state-changing request goes through ``guard``: signed in (else 403), the session's CSRF
token in the form (else 403), a role allowed to do it (else 403); each refusal is written
to the audit log with outcome ``forbidden``, as the JSON API does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from api.auth import Principal, Role
from api.console.session import (
    COOKIE,
    KEY_CHARS,
    ConsoleSession,
    SessionCodec,
    cookie_options,
    same_token,
)
from api.deps import ApiState, state_of

__all__ = ["HERE", "OPERATORS", "Page", "can", "guard", "page", "redirect", "render",
           "set_session", "signed_in"]

log = logging.getLogger("hub.console")

HERE: Final = Path(__file__).resolve().parent
OPERATORS: Final[tuple[Role, ...]] = ("operations", "admin")
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
              "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

_env = Environment(loader=FileSystemLoader(HERE / "templates"),
                   autoescape=select_autoescape(("html",)), trim_blocks=True,
                   lstrip_blocks=True)


BEIJING: Final = timezone(timedelta(hours=8), "CST")


def _when(value: datetime | str | None) -> str:
    """Beijing time, as the bureau reads its clocks (stored times are UTC)."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:  # an ISO time read back as text (SQLite): shown like the others
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        value = parsed
    if value.tzinfo is None:  # the stores keep UTC; SQLite gives it back without a zone
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


_env.filters["when"] = _when
_env.filters["pretty"] = _pretty
_env.filters["q"] = lambda v: quote(str(v), safe="")


def can(who: Principal, roles: Collection[str]) -> bool:
    """``admin`` may everything, as in ``api.auth``."""
    return who.role == "admin" or who.role in roles


@dataclass(frozen=True)
class Page:
    """A signed-in request: the hub's state, who, and the session (for its CSRF token)."""

    request: Request
    state: ApiState
    who: Principal
    session: ConsoleSession

    def can(self, *roles: str) -> bool:
        return can(self.who, roles)


def _codec(state: ApiState) -> SessionCodec:
    return SessionCodec(state.deps.settings.console_secret.get_secret_value())


def read_session(request: Request) -> ConsoleSession | None:
    return _codec(state_of(request)).loads(request.cookies.get(COOKIE))


def _still_known(state: ApiState, session: ConsoleSession) -> bool:
    """The session's token is still one of the hub's (same user and role): a token taken
    out of ``admin_tokens`` ends its sessions at the next restart."""
    principals: Mapping[str, Principal] = getattr(state.auth, "_principals", {})
    who = session.principal
    return any(k[:KEY_CHARS] == session.key and p == who for k, p in principals.items())


def signed_in(request: Request) -> Page | None:
    """The page context of a signed-in request, else None."""
    state = state_of(request)
    session = read_session(request)
    if session is None or session.principal is None or not _still_known(state, session):
        return None
    return Page(request, state, session.principal, session)


def set_session(response: Response, request: Request, session: ConsoleSession | None) -> None:
    """Write (or, for None, clear) the session cookie on ``response``."""
    s = state_of(request).deps.settings
    opts = cookie_options(development=s.env == "development", host=s.http_host)
    if session is None:
        response.delete_cookie(COOKIE, path=opts["path"], secure=opts["secure"],
                               httponly=True, samesite="strict")
        return
    response.set_cookie(value=_codec(state_of(request)).dumps(session), **opts)


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def render(request: Request, template: str, context: Mapping[str, Any], *,
           status: int = 200, session: ConsoleSession | None = None,
           who: Principal | None = None) -> HTMLResponse:
    """A page; ``session``/``who`` feed the layout (user, logout form, CSRF meta tag)."""
    html = _env.get_template(template).render(
        {"who": who, "csrf": session.csrf if session else "", "path": request.url.path,
         "can": (lambda *roles: can(who, roles)) if who else (lambda *roles: False),
         **context})
    return _headers(HTMLResponse(html, status_code=status))  # type: ignore[return-value]


def page(p: Page, template: str, context: Mapping[str, Any] | None = None, *,
         status: int = 200) -> HTMLResponse:
    return render(p.request, template, context or {}, status=status, session=p.session,
                  who=p.who)


def redirect(url: str) -> RedirectResponse:
    r = RedirectResponse(url, status_code=303)
    _headers(r)
    return r


def to_login(request: Request) -> RedirectResponse:
    """Not signed in: to the login form, coming back here afterwards."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/console/login?next={quote(back, safe='')}")


async def _refuse(request: Request, who: Principal | None, why: str,
                  detail: Mapping[str, Any], session: ConsoleSession | None) -> HTMLResponse:
    state = state_of(request)
    actor, role = (who.user, who.role) if who else ("anonymous", "-")
    log.warning("console: forbidden: %s (%s) POST %s: %s", actor, role, request.url.path, why)
    try:
        await state.audit.record(actor, role, f"POST {request.url.path}", request.url.path,
                                 {"console": True, "why": why, **detail}, "forbidden")
    except Exception:
        log.exception("console: could not audit a refused request")
    return render(request, "error.html", {"status": 403, "title": "Forbidden", "message": why},
                  status=403, session=session, who=who)


async def guard(request: Request, *roles: Role) -> tuple[Page, FormData] | HTMLResponse:
    """A POST's page context and form, once it is signed in, carries the session's CSRF
    token and comes from a role among ``roles`` (``admin`` always; none given: any
    signed-in role). Otherwise the 403 page to answer, audited."""
    form = await request.form()
    p = signed_in(request)
    if p is None:
        return await _refuse(request, None, "not signed in (or the session expired)", {},
                             read_session(request))
    token = form.get("csrf")
    if not same_token(p.session.csrf, token if isinstance(token, str) else None):
        return await _refuse(request, p.who, "missing or wrong CSRF token",
                             {"csrf": "missing" if not token else "wrong"}, p.session)
    if roles and not p.can(*roles):
        allowed = sorted(set(roles) | {"admin"})
        return await _refuse(request, p.who, f"role {p.who.role} may not do this; needs "
                             f"one of {', '.join(allowed)}", {"required": allowed}, p.session)
    return p, form
