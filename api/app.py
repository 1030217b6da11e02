"""The hub's HTTP API: partner ingress, health, transaction lookups. OpenAPI at /openapi.json."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException

from api.ingress import ingress_router
from routes.deps import Deps

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

    @app.get("/health", tags=["ops"])
    async def get_health() -> dict[str, Any]:
        return await health() if health else {"status": "ok"}

    @app.get("/admin/breakers", tags=["ops"], summary="Circuit breaker state per partner")
    async def breakers() -> list[dict[str, Any]]:
        return deps.breakers.snapshot()

    @app.get("/transactions/summary", tags=["ops"])
    async def summary() -> dict[str, int]:
        return await deps.journal.status_counts()

    @app.get("/transactions/{correlation_id}", tags=["ops"])
    async def transaction(correlation_id: str) -> dict[str, Any]:
        txn = await deps.journal.transaction(correlation_id)
        if txn is None:
            raise HTTPException(404, f"no transaction {correlation_id}")
        return {"transaction": txn, "log": await deps.journal.log_for(correlation_id)}

    return app
