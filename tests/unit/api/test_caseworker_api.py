"""The caseworker's JSON API: transactions by person or unit (validated, masked, audited,
reveal only for caseworkers), one transaction's path, the worklists, and the breaker reset
(operations, audited)."""

from __future__ import annotations

import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_api
from broker.topology import Names
from config.settings import load_settings
from contracts.ids import make_credit_code, make_id_number
from retry.breaker import BreakerPolicy, Breakers
from services.deps import Deps
from storage.audit import AuditLog
from storage.journal import Journal, LogEntry, TxnUpdate, make_engine

RNG = random.Random(4015)
ID = make_id_number(RNG)
USCC = make_credit_code(RNG)
BAD_ID = ID[:17] + ("1" if ID[17] != "1" else "2")


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev-{role}"}  # a development hub: the dev tokens


@pytest.fixture
async def journal(template_db: Path, tmp_path: Path) -> AsyncIterator[Journal]:
    shutil.copy(template_db, tmp_path / "hub.db")
    j = Journal(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"),
                subject_key=b"api-test-key-0123456789abcdef")
    try:
        yield j
    finally:
        await j.engine.dispose()


@pytest.fixture
async def http(journal: Journal) -> AsyncIterator[httpx.AsyncClient]:
    deps = Deps(settings=load_settings(env={"HUB_ENV": "development"}),
                tax=None, core=None,  # type: ignore[arg-type]
                idem=None, journal=journal, publisher=None,  # type: ignore[arg-type]
                owner="t", names=Names("t"),
                breakers=Breakers(BreakerPolicy(threshold=2, open_s=600)))
    app = create_api(deps)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as client:
        client.app = app  # type: ignore[attr-defined]
        client.deps = deps  # type: ignore[attr-defined]
        yield client


async def _audit(journal: Journal, action: str) -> list[Any]:
    return await AuditLog(journal.engine).list(action=action)


async def test_search_by_person_is_masked_audited_and_revealed_only_to_caseworkers(
        journal: Journal, http: httpx.AsyncClient) -> None:
    await journal.write(TxnUpdate("c1", "tax.employee.enroll", f"{USCC}:{ID}", "core",
                                  "rejected", "TX201", "no"),
                        LogEntry("m1", "c1", "tax.employee.enroll", "tax", "out",
                                 "tax.employee", "rejected", 1, 12))
    assert (await http.get("/transactions", params={"person": ID})).status_code == 401
    r = await http.get("/transactions", params={"person": ID}, headers=_auth("readonly"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 1 and body["items"][0]["correlation_id"] == "c1"
    assert ID not in r.text and body["items"][0]["business_key"].startswith(f"{USCC}:")
    entries = await _audit(journal, "transaction.search")
    assert len(entries) == 1 and entries[0].actor == "dev-readonly"
    assert ID not in entries[0].target and entries[0].target.startswith("person:")
    r = await http.get("/transactions", params={"person": ID, "reveal": "true"},
                       headers=_auth("readonly"))
    assert r.status_code == 403
    r = await http.get("/transactions", params={"person": ID, "reveal": "true"},
                       headers=_auth("caseworker"))
    assert r.json()["items"][0]["business_key"] == f"{USCC}:{ID}"
    r = await http.get("/transactions", params={"unit": USCC.lower()}, headers=_auth("readonly"))
    assert r.json()["total"] == 1 and r.json()["subject"] == USCC


@pytest.mark.parametrize(("params", "field"), [
    ({"person": BAD_ID}, "person"),
    ({"unit": USCC[:17] + ("1" if USCC[17] != "1" else "2")}, "unit"),
    ({}, "person"),
    ({"person": ID, "unit": USCC}, "unit"),
])
async def test_a_bad_search_is_a_422_naming_the_field(journal: Journal, http: httpx.AsyncClient,
                                                      params: dict[str, str],
                                                      field: str) -> None:
    r = await http.get("/transactions", params=params, headers=_auth("readonly"))
    assert r.status_code == 422
    assert field in r.text and BAD_ID not in r.text
    assert await _audit(journal, "transaction.search") == []


async def test_the_path_of_a_transaction_and_the_worklists(journal: Journal,
                                                           http: httpx.AsyncClient) -> None:
    await journal.write(TxnUpdate("c1", "tax.employee.enroll", f"{USCC}:{ID}", "core", "dead"),
                        LogEntry("m1", "c1", "tax.employee.enroll", "core", "in",
                                 "ingress.core", "ok", 0, 3),
                        LogEntry("m1", "c1", "tax.employee.enroll", "tax", "out",
                                 "tax.employee", "dead", 5, 40))
    r = await http.get("/transactions/c1/path", headers=_auth("readonly"))
    assert [h["hop"] for h in r.json()["hops"]] == ["ingress.core", "tax.employee"]
    assert r.json()["hops"][1]["duration_ms"] == 40
    assert (await http.get("/transactions/nope/path",
                           headers=_auth("readonly"))).status_code == 404
    lists = (await http.get("/worklists", headers=_auth("readonly"))).json()
    assert {x["name"]: x["count"] for x in lists["lists"]} == {"failed_syncs": 1}
    page = (await http.get("/worklists/failed_syncs", headers=_auth("readonly"))).json()
    assert page["items"][0]["ref"] == "c1" and ID not in str(page)
    assert (await http.get("/worklists/union_cases",
                           headers=_auth("readonly"))).status_code == 404


async def test_an_operator_resets_an_open_breaker(journal: Journal,
                                                  http: httpx.AsyncClient) -> None:
    breakers: Breakers = http.deps.breakers  # type: ignore[attr-defined]
    tax = breakers.get("tax")
    tax.failure()
    tax.failure()
    assert not tax.allow()
    assert (await http.post("/admin/breakers/tax/reset",
                            headers=_auth("readonly"))).status_code == 403
    assert (await http.post("/admin/breakers/nobody/reset",
                            headers=_auth("ops"))).status_code == 404
    r = await http.post("/admin/breakers/tax/reset", headers=_auth("ops"))
    assert r.status_code == 200 and r.json()["was"] == "open"
    assert r.json()["now"]["state"] == "closed" and tax.allow()
    entries = await _audit(journal, "breaker.reset")
    assert [(e.actor, e.target) for e in entries] == [("dev-ops", "tax")]
