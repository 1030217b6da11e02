"""The hub's HTTP API: partner ingress, channels, queries, admin, ops. OpenAPI at /openapi.json.

Routers are module-level (one per file in ``api/``); what their endpoints need
comes from ``api.deps`` providers reading the one ``ApiState`` kept on the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import admin, batches, channels, ingress, ops, queries, resend
from api.auth import Authenticator, load_principals
from api.deps import ApiState, install
from services.deps import Deps
from storage.audit import AuditLog
from storage.deadletters import DeadLetterStore

__all__ = ["build_app", "create_api", "hub_state"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def hub_state(deps: Deps, *,
              health: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> ApiState:
    """The hub's API state: audit and dead letters on the journal's database, admin tokens
    from the settings (``api.auth.load_principals``)."""
    engine, s = deps.journal.engine, deps.settings
    audit = AuditLog(engine)
    auth = Authenticator(load_principals(s.admin_tokens.get_secret_value(),
                                         http_host=s.http_host), audit)
    return ApiState(deps=deps, audit=audit, dead_letters=DeadLetterStore(engine), auth=auth,
                    health=health)


def build_app(state: ApiState, *, lifespan: Lifespan | None = None) -> FastAPI:
    """Every router, on one app holding ``state``; the channel door only when the hub has
    an application store and a nonce store."""
    app = FastAPI(title="Nanjing medical-insurance integration hub", version="0.1.0",
                  lifespan=lifespan)
    install(app, state)
    app.include_router(ingress.router)
    app.include_router(queries.router)
    if state.deps.applications is not None and state.deps.nonces is not None:
        app.include_router(channels.router)
    app.include_router(admin.router)
    app.include_router(resend.router)
    app.include_router(batches.router)
    app.include_router(ops.router)
    return app


def create_api(deps: Deps, *, on_start: Callable[[], Awaitable[None]] | None = None,
               on_stop: Callable[[], Awaitable[None]] | None = None,
               health: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> FastAPI:
    """The hub's app; ``on_start``/``on_stop`` run in its lifespan."""
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_start:
            await on_start()
        try:
            yield
        finally:
            if on_stop:
                await on_stop()

    return build_app(hub_state(deps, health=health), lifespan=lifespan)
