"""The app as ``create_api`` builds it: every router on one state, ops endpoints guarded,
the channel door only with its stores; a router without a state fails loudly."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.channels.auth import MemoryNonceStore
from api import ops
from api.app import create_api
from broker.topology import Names
from config.settings import load_settings
from retry.breaker import Breakers
from services.deps import Deps
from storage.applications import ApplicationStore
from storage.journal import Journal, make_engine

READONLY = {"Authorization": "Bearer dev-readonly"}  # loopback hub without tokens: dev tokens
PATHS = {
    "/partners/core/events", "/partners/tax/callback", "/queries/tax", "/queries/tax/{name}",
    "/admin/dead-letters", "/admin/dead-letters/groups", "/admin/dead-letters/{id}",
    "/admin/audit", "/admin/dead-letters/retry", "/admin/dead-letters/{id}/edit-retry",
    "/admin/dead-letters/archive", "/admin/resend/employee", "/admin/resend/record",
    "/admin/resend/employee/bulk", "/admin/resend/jobs/{job_id}",
    "/admin/batches/students/{op}", "/admin/batches/{job_id}",
    "/admin/batches/{job_id}/files/{name}", "/admin/reports/compare/{name}", "/health",
    "/admin/breakers", "/transactions/summary", "/transactions/{correlation_id}"}
CHANNEL_PATHS = {"/channels/{channel}/applications",
                 "/channels/{channel}/applications/{application_id}"}


def _deps(journal: Journal, *, door: bool = False) -> Deps:
    extra: dict[str, Any] = {"applications": ApplicationStore(journal.engine),
                             "nonces": MemoryNonceStore()} if door else {}
    return Deps(settings=load_settings(env={}), tax=None, core=None,  # type: ignore[arg-type]
                idem=None, journal=journal, publisher=None,  # type: ignore[arg-type]
                owner="t", names=Names("t"), breakers=Breakers(), **extra)


@pytest.fixture
async def journal(template_db: Path, tmp_path: Path) -> AsyncIterator[Journal]:
    shutil.copy(template_db, tmp_path / "hub.db")
    journal = Journal(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"))
    try:
        yield journal
    finally:
        await journal.engine.dispose()


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")


async def test_every_router_is_on_the_app_and_the_door_needs_its_stores(
        journal: Journal) -> None:
    assert set(create_api(_deps(journal)).openapi()["paths"]) == PATHS
    assert set(create_api(_deps(journal, door=True)).openapi()["paths"]) == PATHS | CHANNEL_PATHS


async def test_ops_endpoints_answer_and_only_health_is_open(journal: Journal) -> None:
    async def health() -> dict[str, Any]:
        return {"status": "degraded", "broker": False}

    async with _client(create_api(_deps(journal), health=health)) as http:
        assert (await http.get("/health")).json() == {"status": "degraded", "broker": False}
        for path in ("/admin/breakers", "/transactions/summary", "/transactions/x",
                     "/admin/reports/compare/b1.csv"):
            assert (await http.get(path)).status_code == 401, path
        assert (await http.get("/admin/breakers", headers=READONLY)).json() == []
        assert (await http.get("/transactions/summary", headers=READONLY)).json() == {}
        assert (await http.get("/transactions/x", headers=READONLY)).status_code == 404
        for name in ("..x.csv", "b1.exe", "nope.csv"):
            r = await http.get(f"/admin/reports/compare/{name}", headers=READONLY)
            assert r.status_code == 404, name
    async with _client(create_api(_deps(journal))) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}


async def test_a_router_without_a_state_fails_loudly() -> None:
    app = FastAPI()
    app.include_router(ops.router)
    async with _client(app) as http:
        with pytest.raises(RuntimeError, match="no ApiState"):
            await http.get("/health")
