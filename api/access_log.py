"""The HTTP access log and the HTTP end of tracing: one ASGI middleware around every request.

Each request runs inside a server span that continues the caller's W3C ``traceparent``
(``kernel.tracing.server_span``; a request without one starts a trace), so the hub's
partner calls and the AMQP messages it publishes carry the same trace id. When the
request ends one JSON line goes to the ``hub.access`` logger (``kernel.logs``):

    {"ts":..., "level":"INFO", "logger":"hub.access",
     "msg":"GET /transactions/{correlation_id} 200", "method":"GET",
     "path":"/transactions/{correlation_id}", "status":200, "duration_ms":3.2,
     "user":"alice", "role":"caseworker", "client":"10.0.0.5", "trace_id":...,
     "span_id":...}

``path`` is the route's template, never the raw path: IDs in paths (a correlation id, an
application number) stay out; a path no route matches is ``<unmatched>``. The query string
is dropped (it can name a person: ``/transactions?person=...``). The caller is named when
known: ``user``/``role`` for a valid bearer token (or a principal an endpoint left in
``request.state.principal``: the console's session), ``caller`` for a partner's
``X-Partner`` header on a request that was not refused 401/403.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI
from opentelemetry.trace import Span
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http import before_calls
from api.metrics import count_request
from config.settings import ConfigError, HubSettings
from kernel.logs import ACCESS_LOGGER
from kernel.tracing import inject_request, server_span, setup_tracing

__all__ = ["AccessLog", "install_access_log", "path_template"]

log = logging.getLogger(ACCESS_LOGGER)
UNMATCHED = "<unmatched>"


def path_template(scope: Scope) -> str:
    """The matched route's path template (``/transactions/{correlation_id}``;
    ``<prefix>/{path}`` for a mounted app), ``<unmatched>`` when nothing matched."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return path  # a Mount's path_format is already ``<prefix>/{path}``


def _caller(scope: Scope, headers: dict[str, str], status: int) -> dict[str, str]:
    """Who called, when the hub knows: a bearer token's principal, a principal an endpoint
    left in the request state, or the partner a signed door let in."""
    who = (scope.get("state") or {}).get("principal")
    if who is None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            api = getattr(getattr(scope.get("app"), "state", None), "api", None)
            authenticator = getattr(api, "auth", None)
            if authenticator is not None:
                who = authenticator.authenticate(auth[7:].strip())
    if who is not None:
        return {"user": str(who.user), "role": str(who.role)}
    partner = headers.get("x-partner")
    if partner and status not in (401, 403):
        return {"caller": partner[:40]}
    return {}


class AccessLog:
    """Pure ASGI (no ``BaseHTTPMiddleware``: it would break streaming and contextvars)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers") or ()}
        method = str(scope.get("method", "GET"))
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with server_span(method, headers, {"http.request.method": method}) as span:
            try:
                await self.app(scope, receive, watch)
            finally:
                template = path_template(scope)
                span.update_name(f"{method} {template}")
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                count_request(scope, status)
                if log.isEnabledFor(logging.INFO):
                    self._line(scope, headers, method, template, status, t0, span)

    @staticmethod
    def _line(scope: Scope, headers: dict[str, str], method: str, template: str, status: int,
              t0: float, span: Span) -> None:
        ms = round((time.perf_counter() - t0) * 1000, 1)
        client = scope.get("client")
        ctx = span.get_span_context()
        extra: dict[str, Any] = {"method": method, "path": template, "status": status,
                                 "duration_ms": ms, **_caller(scope, headers, status)}
        if ctx.is_valid:  # on the record itself: a handler that formats later still has them
            extra |= {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
        if client:
            extra["client"] = str(client[0])
        log.info("%s %s %d", method, template, status, extra=extra)


def install_access_log(app: FastAPI, settings: HubSettings) -> None:
    """The access log and HTTP tracing on ``app``; the process's tracer provider with the
    exporter of setting ``otel_exporter`` (a ``ConfigError`` when it cannot be had) and the
    ``traceparent`` on every partner call (``adapters.http.before_calls``)."""
    try:
        setup_tracing(getattr(settings, "otel_exporter", "none"))
    except ValueError as exc:
        raise ConfigError(f"setting otel_exporter (HUB_OTEL_EXPORTER): {exc}") from None
    before_calls(inject_request)
    app.add_middleware(AccessLog)
