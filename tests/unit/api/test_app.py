"""The app as ``create_api`` builds it: every router on one state, ops endpoints guarded,
the channel door only with its stores; a router without a state fails loudly."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from adapters.channels.auth import MemoryNonceStore
from api import ops
from api.app import create_api
from broker.topology import Names
from config.settings import ConfigError, load_settings
from retry.breaker import Breakers
from services.deps import Deps
from storage.applications import ApplicationStore
from storage.audit import AuditLog
from storage.journal import Journal, TxnUpdate, make_engine

READONLY = {"Authorization": "Bearer dev-readonly"}  # development hub without tokens: dev tokens
CASEWORKER = {"Authorization": "Bearer dev-caseworker"}
PATHS = {
    "/partners/core/events", "/partners/tax/callback", "/queries/tax", "/queries/tax/{name}",
    "/admin/dead-letters", "/admin/dead-letters/groups", "/admin/dead-letters/{id}",
    "/admin/audit", "/admin/dead-letters/retry", "/admin/dead-letters/{id}/edit-retry",
    "/admin/dead-letters/archive", "/admin/resend/employee", "/admin/resend/record",
    "/admin/resend/employee/bulk", "/admin/resend/jobs/{job_id}", "/admin/resend/flexible/detect",
    "/admin/batches/students/{op}", "/admin/batches/{job_id}",
    "/admin/batches/{job_id}/files/{name}", "/admin/initial-loads/{kind}",
    "/admin/initial-loads/{job_id}", "/admin/initial-loads/{job_id}/files/{name}",
    "/admin/reports/compare/{name}", "/health",
    "/health/live", "/health/ready", "/admin/breakers", "/transactions/summary",
    "/transactions/{correlation_id}", "/admin/warnings/runs", "/admin/warnings/runs/{month}",
    "/admin/warnings/runs/{month}/resend", "/partners/union/standards/{year}",
    "/partners/union/cases", "/partners/union/cases/{case_no}/final", "/admin/union/cases",
    "/admin/union/cases/{case_id}", "/admin/union/alerts",
    # issue 15: caseworker search and worklists, metrics, AsyncAPI, durable jobs
    "/transactions", "/transactions/{correlation_id}/path", "/admin/breakers/{partner}/reset",
    "/worklists", "/worklists/{name}", "/metrics", "/admin/live", "/asyncapi.json", "/asyncapi",
    "/admin/jobs", "/admin/jobs/{job_id}", "/admin/jobs/{job_id}/cancel",
    "/admin/dead-letters/retry-jobs"}
CHANNEL_PATHS = {"/channels/{channel}/applications",
                 "/channels/{channel}/applications/{application_id}"}


def _deps(journal: Journal, *, door: bool = False, env: str = "development") -> Deps:
    extra: dict[str, Any] = {"applications": ApplicationStore(journal.engine),
                             "nonces": MemoryNonceStore()} if door else {}
    return Deps(settings=load_settings(env={"HUB_ENV": env}),
                tax=None, core=None,  # type: ignore[arg-type]
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
            r = await http.get(f"/admin/reports/compare/{name}", headers=CASEWORKER)
            assert r.status_code == 404, name
    async with _client(create_api(_deps(journal))) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}


async def test_a_router_without_a_state_fails_loudly() -> None:
    app = FastAPI()
    app.include_router(ops.router)
    async with _client(app) as http:
        with pytest.raises(RuntimeError, match="no ApiState"):
            await http.get("/health")


# -- development credentials: the dev tokens by explicit mode, never by bind address --------

async def test_dev_tokens_are_refused_by_a_production_hub_even_on_loopback(
        journal: Journal) -> None:
    deps = _deps(journal, env="production")
    assert deps.settings.http_host == "127.0.0.1"
    async with _client(create_api(deps)) as http:
        r = await http.get("/transactions/summary", headers=READONLY)
        assert r.status_code == 401
    async with _client(create_api(_deps(journal))) as http:  # development
        assert (await http.get("/transactions/summary", headers=READONLY)).status_code == 200


async def test_dev_tokens_work_in_development_mode_on_any_bind_address(journal: Journal) -> None:
    deps = _deps(journal)
    deps = replace(deps, settings=deps.settings.model_copy(update={"http_host": "0.0.0.0"}))
    async with _client(create_api(deps)) as http:
        assert (await http.get("/transactions/summary", headers=READONLY)).status_code == 200


async def test_a_development_token_configured_on_a_production_hub_stops_it(
        journal: Journal) -> None:
    deps = _deps(journal, env="production")
    deps = replace(deps, settings=deps.settings.model_copy(update={
        "admin_tokens": SecretStr("dev-admin:alice:admin")}))
    with pytest.raises(ConfigError, match=r"setting admin_tokens .*development token.*alice"):
        create_api(deps)


# -- liveness and readiness --------------------------------------------------------------

async def test_readiness_is_503_while_a_dependency_is_down_and_liveness_stays_200(
        journal: Journal) -> None:
    parts = {"broker": True, "redis": True, "database": True}

    async def readiness() -> dict[str, Any]:
        return dict(parts)

    async def health() -> dict[str, Any]:
        return {"status": "degraded" if not all(parts.values()) else "ok"}

    async with _client(create_api(_deps(journal), health=health, readiness=readiness)) as http:
        r = await http.get("/health/ready")
        assert r.status_code == 200 and r.json() == {"status": "ready", **parts}
        for down in parts:
            parts.update({k: k != down for k in parts})
            r = await http.get("/health/ready")
            assert r.status_code == 503, down
            assert r.json() == {"status": "unavailable", **parts}
            assert (await http.get("/health")).status_code == 200  # alive, though degraded
            assert (await http.get("/health/live")).json() == {"status": "alive"}


# -- personal data: masked by default, in full for caseworker/admin and audited -------------

ID = "320102199005170017"
USCC = "91320100MA1XXXXX1X"


async def _seed(journal: Journal) -> None:
    await journal.start()
    await journal.write(TxnUpdate("c1", "tax.employee.enroll", f"{USCC}:{ID}", "core",
                                  "delivered", reason=f"tax answered for {ID}"))
    await journal.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("token", ["dev-readonly", "dev-ops", "dev-tester", "dev-caseworker",
                                   "dev-admin"])
async def test_a_transaction_is_masked_for_every_role_by_default(journal: Journal,
                                                                  token: str) -> None:
    await _seed(journal)
    async with _client(create_api(_deps(journal))) as http:
        r = await http.get("/transactions/c1", headers=_bearer(token))
    assert r.status_code == 200 and ID not in r.text
    assert r.json()["transaction"]["business_key"] == f"{USCC}:320102********0017"
    assert await AuditLog(journal.engine).list() == []  # nothing personal was shown


@pytest.mark.parametrize(("token", "user"), [("dev-caseworker", "dev-caseworker"),
                                             ("dev-admin", "dev-admin")])
async def test_a_transaction_in_full_only_for_caseworker_and_admin_each_read_audited(
        journal: Journal, token: str, user: str) -> None:
    await _seed(journal)
    async with _client(create_api(_deps(journal))) as http:
        r = await http.get("/transactions/c1", params={"reveal": "true"}, headers=_bearer(token))
    assert r.status_code == 200 and r.json()["transaction"]["business_key"] == f"{USCC}:{ID}"
    [row] = await AuditLog(journal.engine).list()
    assert (row.actor, row.action, row.target, row.outcome) == \
        (user, "transaction.view_full", "c1", "ok")
    assert ID not in str(row.detail)


@pytest.mark.parametrize("token", ["dev-readonly", "dev-ops", "dev-tester"])
async def test_a_transaction_in_full_is_403_for_other_roles_and_audited(journal: Journal,
                                                                        token: str) -> None:
    await _seed(journal)
    async with _client(create_api(_deps(journal))) as http:
        r = await http.get("/transactions/c1", params={"reveal": "true"}, headers=_bearer(token))
    assert r.status_code == 403 and ID not in r.text
    [row] = await AuditLog(journal.engine).list()
    assert (row.actor, row.outcome) == (token, "forbidden")


@pytest.mark.parametrize(("token", "status"), [
    ("dev-caseworker", 200), ("dev-admin", 200), ("dev-readonly", 403), ("dev-ops", 403),
    ("dev-tester", 403)])
async def test_compare_reports_download_only_for_caseworker_and_admin_audited(
        journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str,
        status: int) -> None:
    monkeypatch.setattr(ops, "REPORTS_DIR", tmp_path)
    (tmp_path / "B1.csv").write_text(f"id_number,name\n{ID},张三丰\n", encoding="utf-8")
    async with _client(create_api(_deps(journal))) as http:
        r = await http.get("/admin/reports/compare/B1.csv", headers=_bearer(token))
    assert r.status_code == status
    [row] = await AuditLog(journal.engine).list()
    if status == 200:
        assert ID in r.text  # the report is the caseworker's work list: in full
        assert (row.actor, row.action, row.target, row.outcome) == \
            (token, "report.download", "compare:B1.csv", "ok")
    else:
        assert ID not in r.text and (row.actor, row.outcome) == (token, "forbidden")


# -- FastAPI's 422 does not echo what was sent ---------------------------------------------

async def test_a_422_names_the_fields_but_never_echoes_the_submitted_values(
        journal: Journal) -> None:
    bad_id = ID[:-1] + "5"  # a wrong check digit
    body = {"id_number": bad_id, "unit_credit_code": USCC, "action": "enroll",
            "reason": "补发", ID: "an unknown field named by an ID number"}
    async with _client(create_api(_deps(journal))) as http:
        r = await http.post("/admin/resend/employee", json=body,
                            headers=_bearer("dev-caseworker"))
    assert r.status_code == 422
    assert bad_id not in r.text and ID not in r.text and "张" not in r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert errors and all(set(e) == {"loc", "field", "msg", "type"} for e in errors)
    assert ["body", "id_number"] in [e["loc"] for e in errors]
    assert ["body", "320102********0017"] in [e["loc"] for e in errors]  # the key, masked
