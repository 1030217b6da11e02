"""The hub's HTTP API: partner ingress, channels, queries, admin, ops. OpenAPI at /openapi.json.

Routers are module-level (one per file in ``api/``); what their endpoints need
comes from ``api.deps`` providers reading the one ``ApiState`` kept on the app.

App-wide: every error the hub defines is an RFC 7807 ``application/problem+json``
document (``api.problems``): a request FastAPI cannot parse is answered 422 with the
fields and what is wrong with them (``loc``, ``field``, ``msg``, ``type``), masked, never
the submitted values (FastAPI's default echoes ``input``: ID numbers, names).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import (
    admin,
    assistance,
    asyncapi,
    batches,
    channels,
    confirmations,
    difficulty,
    drugs,
    ingress,
    initial_loads,
    institution_recon,
    ops,
    queries,
    refunds,
    resend,
    serious_illness,
    transfer,
    union,
    voucher,
    warnings,
    worklists,
)
from api import jobs as jobs_api
from api import metrics as api_metrics
from api.access_log import install_access_log
from api.auth import Authenticator, load_principals
from api.console import router as console_router
from api.deps import ApiState, install
from api.docs import install_docs
from api.problems import install_problem_handlers, validation_errors
from config.settings import ConfigError
from services.deps import Deps
from storage.audit import AuditLog
from storage.deadletters import DeadLetterStore

__all__ = ["build_app", "create_api", "hub_state", "install_error_handlers",
           "validation_errors"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
Check = Callable[[], Awaitable[dict[str, Any]]]


def hub_state(deps: Deps, *, health: Check | None = None,
              readiness: Check | None = None) -> ApiState:
    """The hub's API state: audit and dead letters on the journal's database, admin tokens
    from the settings (``api.auth.load_principals``: the dev tokens only when the hub is
    explicitly in development mode). A bad ``admin_tokens`` is a ``ConfigError``."""
    engine, s = deps.journal.engine, deps.settings
    audit = AuditLog(engine)
    try:
        principals = load_principals(s.admin_tokens.get_secret_value(),
                                     development=s.env == "development", http_host=s.http_host)
    except ValueError as exc:
        raise ConfigError(f"setting admin_tokens (HUB_ADMIN_TOKENS): {exc}") from None
    return ApiState(deps=deps, audit=audit, dead_letters=DeadLetterStore(engine),
                    auth=Authenticator(principals, audit), health=health, readiness=readiness)


def install_error_handlers(app: FastAPI) -> None:
    """One error shape: RFC 7807 problem documents (``api.problems``), masked, never the
    submitted values."""
    install_problem_handlers(app)


def build_app(state: ApiState, *, lifespan: Lifespan | None = None) -> FastAPI:
    """Every router, on one app holding ``state``; the channel door only when the hub has
    an application store and a nonce store."""
    app = FastAPI(title="Nanjing medical-insurance integration hub", version="0.1.0",
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # /docs: api.docs
    install(app, state)
    install_docs(app)
    install_error_handlers(app)
    install_access_log(app, state.deps.settings)  # access log + HTTP tracing
    app.include_router(ingress.router)
    app.include_router(queries.router)
    if state.deps.applications is not None and state.deps.nonces is not None:
        app.include_router(channels.router)
    app.include_router(admin.router)
    app.include_router(resend.router)
    if state.deps.confirmations is not None:
        app.include_router(confirmations.router)
    if state.deps.difficulty is not None:
        app.include_router(difficulty.router)
    if state.deps.assistance is not None:
        app.include_router(assistance.router)
    app.include_router(batches.router)
    app.include_router(initial_loads.router)
    app.include_router(warnings.router)
    app.include_router(union.router)
    if state.deps.transfers is not None:
        app.include_router(transfer.router)
    if state.deps.drugs is not None:
        app.include_router(drugs.router)
    if state.deps.refunds is not None:
        app.include_router(refunds.router)
    if state.deps.voucher is not None:
        app.include_router(voucher.router)  # F13 电子凭证, kiosks, WeChat, 医税平台
    if state.deps.institution_recon is not None:
        app.include_router(institution_recon.router)  # F14 对账, 单边帐
    if state.deps.serious_illness is not None:
        app.include_router(serious_illness.router)  # F15 大病保险
    app.include_router(ops.router)
    app.include_router(asyncapi.router)
    app.include_router(worklists.router)
    app.include_router(jobs_api.router)  # durable jobs: /admin/jobs, dead-letter retry jobs
    app.include_router(console_router)  # the web console (/console): api/console
    api_metrics.install(app)  # GET /metrics, /admin/live, hub_http_requests_total
    return app


def create_api(deps: Deps, *, on_start: Callable[[], Awaitable[None]] | None = None,
               on_stop: Callable[[], Awaitable[None]] | None = None,
               health: Check | None = None, readiness: Check | None = None) -> FastAPI:
    """The hub's app; ``on_start``/``on_stop`` run in its lifespan; ``health`` answers
    ``/health`` (liveness), ``readiness`` ``/health/ready`` (``api.ops``)."""
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_start:
            await on_start()
        try:
            yield
        finally:
            if on_stop:
                await on_stop()

    return build_app(hub_state(deps, health=health, readiness=readiness), lifespan=lifespan)
