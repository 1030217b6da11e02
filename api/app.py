"""The hub's HTTP API: partner ingress, health, transaction lookups. OpenAPI at /openapi.json."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse

from api.admin import admin_router
from api.auth import READERS, Authenticator, load_principals
from api.batches import batches_router
from api.channels import channels_router
from api.ingress import ingress_router
from api.queries import queries_router
from api.resend import resend_router
from routes.compare import REPORTS_DIR
from services.deps import Deps
from storage.audit import AuditLog
from storage.deadletters import DeadLetterStore

__all__ = ["create_api"]


def create_api(deps: Deps, *, on_start: Callable[[], Awaitable[None]] | None = None,
               on_stop: Callable[[], Awaitable[None]] | None = None,
               health: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_start:
            await on_start()
        try:
            yield
        finally:
            if on_stop:
                await on_stop()

    app = FastAPI(title="Nanjing medical-insurance integration hub", version="0.1.0",
                  lifespan=lifespan)
    app.include_router(ingress_router(deps))
    app.include_router(queries_router(deps))
    if deps.applications is not None and deps.nonces is not None:
        app.include_router(channels_router(deps, deps.applications,  # type: ignore[arg-type]
                                           deps.nonces))
    engine, s = deps.journal.engine, deps.settings
    audit = AuditLog(engine)
    auth = Authenticator(load_principals(s.admin_tokens.get_secret_value(),
                                         http_host=s.http_host), audit)
    app.include_router(admin_router(deps, DeadLetterStore(engine), audit, auth))
    app.include_router(resend_router(deps, audit=audit, require=auth.require))
    app.include_router(batches_router(deps, require=auth.require, audit=audit))

    @app.get("/admin/reports/compare/{name}", tags=["ops"],
             summary="Download a 比对 difference report (<batch_id>.csv or .xlsx)",
             dependencies=[Depends(auth.require(*READERS))])
    async def compare_report(name: str) -> Any:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}\.(csv|xlsx)", name) or ".." in name:
            raise HTTPException(404, f"no report {name}")
        path = REPORTS_DIR / name
        if not path.is_file():
            raise HTTPException(404, f"no report {name}")
        return FileResponse(path, filename=name)

    @app.get("/health", tags=["ops"])
    async def get_health() -> dict[str, Any]:
        return await health() if health else {"status": "ok"}

    @app.get("/admin/breakers", tags=["ops"], summary="Circuit breaker state per partner",
             dependencies=[Depends(auth.require(*READERS))])
    async def breakers() -> list[dict[str, Any]]:
        return deps.breakers.snapshot()

    @app.get("/transactions/summary", tags=["ops"], dependencies=[Depends(auth.require(*READERS))])
    async def summary() -> dict[str, int]:
        return await deps.journal.status_counts()

    @app.get("/transactions/{correlation_id}", tags=["ops"],
             dependencies=[Depends(auth.require(*READERS))])
    async def transaction(correlation_id: str) -> dict[str, Any]:
        txn = await deps.journal.transaction(correlation_id)
        if txn is None:
            raise HTTPException(404, f"no transaction {correlation_id}")
        return {"transaction": txn, "log": await deps.journal.log_for(correlation_id)}

    return app
