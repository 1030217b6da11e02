"""One error shape (issue 15, item 10): every error the hub defines is an RFC 7807
``application/problem+json`` document, masked; the doors a partner contract fixes keep it.

The walk sends a bad request (no credentials, path parameters that fit no pattern, a
body that is not JSON) to every route of the app with every router on it, and a wrong
method and an unknown path to every family of paths."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from adapters.channels.auth import MemoryNonceStore
from adapters.voucher.client import RedisRateLimiter, VoucherClient, platform_key, sm2_check
from api.app import create_api
from api.problems import (
    PARTNER_SHAPES,
    PROBLEM_JSON,
    Problem,
    answer,
    field_errors_of,
    install_problem_handlers,
)
from broker.topology import Names
from config.settings import load_settings
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerTimeout,
    PartnerUnavailable,
    ValidationFailed,
)
from retry.breaker import Breakers
from services.deps import Deps
from services.voucher import VoucherKit
from storage.applications import ApplicationStore
from storage.assistance import AssistanceStore
from storage.confirmations import ConfirmationStore
from storage.difficulty import DifficultyStore
from storage.drugs import DrugStore
from storage.institution_recon import InstitutionReconStore
from storage.journal import Journal, make_engine
from storage.refunds import RefundStore
from storage.serious_illness import SeriousIllnessStore
from storage.transfer import TransferStore
from storage.union import UnionStore
from storage.voucher import VoucherStore

ID = "320102199005170017"
MASKED = "320102********0017"
OPEN = {"/health", "/health/live", "/health/ready", "/queries/tax", "/openapi.json", "/docs",
        "/docs/oauth2-redirect", "/redoc", "/asyncapi", "/asyncapi.json", "/asyncapi.yaml",
        "/metrics"}
"""Routes that answer a request without credentials (not errors)."""


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://hub")


@pytest.fixture
async def app(template_db: Path, tmp_path: Path) -> AsyncIterator[FastAPI]:
    shutil.copy(template_db, tmp_path / "hub.db")
    journal = Journal(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"))
    engine = journal.engine  # every router on the app, each store on the one database
    settings = load_settings(env={"HUB_ENV": "development"})
    voucher = VoucherKit(store=VoucherStore(engine),  # F13: no call here reaches a partner
                         partners=VoucherClient(settings.partners),
                         limiter=RedisRateLimiter(None, prefix="t:"),  # type: ignore[arg-type]
                         check=sm2_check(platform_key(settings)), settings=settings.voucher)
    deps = Deps(settings=settings, voucher=voucher,
                tax=None, core=None,  # type: ignore[arg-type]
                idem=None, journal=journal, publisher=None,  # type: ignore[arg-type]
                owner="t", names=Names("t"), breakers=Breakers(),
                applications=ApplicationStore(engine), nonces=MemoryNonceStore(),
                confirmations=ConfirmationStore(engine), difficulty=DifficultyStore(engine),
                assistance=AssistanceStore(engine), union=UnionStore(engine),
                transfers=TransferStore(engine), drugs=DrugStore(engine),
                refunds=RefundStore(engine), institution_recon=InstitutionReconStore(engine),
                serious_illness=SeriousIllnessStore(engine))
    try:
        yield create_api(deps)
    finally:
        await journal.engine.dispose()


def _partner_door(path: str) -> bool:
    return any(path.startswith(prefix) for prefix in PARTNER_SHAPES)


def _is_problem(r: httpx.Response) -> bool:
    body = r.json()
    return (r.headers["content-type"] == PROBLEM_JSON and body["status"] == r.status_code
            and isinstance(body["title"], str) and isinstance(body["type"], str))


PARTNER_PARAMS = {"{dept}": "civil_affairs", "{order_no}": "A000001", "{year}": "2026",
                  "{case_no}": "UC2026000001", "{fixmedins_code}": "H32010200001",
                  "{setl_req_no}": "S000001", "{name}": "person", "{ref}": "R000001"}
"""A partner door's path parameters as the partner sends them: the request reaches the
door (an unfit one is refused by the framework, as a problem, like any path)."""
BUSINESS = {"{name}": "enroll"}  # F13's kiosk business names differ from its query names


def _bad_path(path: str) -> str:
    """Every path parameter as a value no pattern takes (and an ID number, to be masked);
    a partner door's as its partner sends them."""
    out = []
    for part in path.split("/"):
        if part.startswith("{"):
            part = (BUSINESS.get(part, PARTNER_PARAMS[part]) if path.startswith("/kiosk/business/")
                    else PARTNER_PARAMS[part]) if _partner_door(path) else f"!{ID}"
        out.append(part)
    return "/".join(out)


async def test_every_route_answers_a_bad_request_with_a_problem_or_its_partner_shape(
        app: FastAPI) -> None:
    routes = {path: sorted(m.upper() for m in ops if m != "parameters")
              for path, ops in app.openapi()["paths"].items()}
    assert len(routes) > 80  # every router is on the app
    families: set[str] = set()
    async with _client(app) as http:
        for path, methods in routes.items():
            families.add("/" + path.split("/")[1])
            for method in methods:
                r = await http.request(method, _bad_path(path), content=b"{not json",
                                       headers={"content-type": "application/json"})
                where = f"{method} {path}: {r.status_code} {r.text[:200]}"
                if path in OPEN or path.startswith("/console"):  # HTML: H1's own pages
                    continue
                assert r.status_code >= 400, where
                assert ID not in r.text, where  # the path's ID number is never echoed
                if _partner_door(path):  # the partner's own envelope: JSON, or SOAP for tax
                    assert r.headers["content-type"].startswith(
                        "text/xml" if "/tax/" in path else "application/json"), where
                    assert "urn:nanjing-hub:problem" not in r.text, where
                else:
                    assert _is_problem(r), where
                    assert r.json().get("instance", "").startswith("/"), where
        assert {"/admin", "/partners", "/channels", "/queries", "/transactions"} <= families
        for family in sorted(families):
            r = await http.get(f"{family}/no/such/thing/{ID}")
            assert r.status_code == 404 and _is_problem(r), family
            assert ID not in r.text and MASKED in r.json()["instance"]
        r = await http.delete("/admin/dead-letters")  # a path, but not this method
        assert r.status_code == 405 and _is_problem(r) and "allow" in r.headers


async def test_a_validation_error_lists_its_fields_masked_without_the_values(
        app: FastAPI) -> None:
    body = {"id_number": ID[:-1] + "5", "unit_credit_code": "91320100MA1XXXXX1X",
            "action": "enroll", "reason": "补发", ID: "an unknown field named by an ID number"}
    async with _client(app) as http:
        r = await http.post("/admin/resend/employee", json=body,
                            headers={"Authorization": "Bearer dev-caseworker"})
    assert r.status_code == 422 and _is_problem(r)
    doc = r.json()
    assert doc["code"] == "VALIDATION" and doc["type"].endswith(":validation")
    assert doc["instance"] == "/admin/resend/employee"
    assert ID not in r.text and ID[:-1] + "5" not in r.text
    assert all(set(e) == {"loc", "field", "msg", "type"} for e in doc["errors"])
    assert ("id_number", ["body", "id_number"]) in [(e["field"], e["loc"])
                                                     for e in doc["errors"]]
    assert MASKED in [e["field"] for e in doc["errors"]]  # the unknown key, masked


class Body(BaseModel):
    n: int = Field(ge=1)


def _tiny() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"database said no about {ID}")

    @app.get("/hub/{kind}")
    async def hub_error(kind: str) -> None:
        raise {"validation": ValidationFailed([("payload.id_number", f"bad {ID}")]),
               "rejected": BusinessRejected("E12", "单位未登记"),
               "client": ClientError("tax refused the request"),
               "timeout": PartnerTimeout("tax did not answer", partner="tax"),
               "unavailable": PartnerUnavailable("tax is down")}[kind]

    @app.get("/own")
    async def own() -> None:
        raise Problem(409, "busy", code="BUSY", job_id="j1")

    @app.post("/body")
    async def body(b: Body) -> dict[str, int]:
        return {"n": b.n}

    return app


async def test_an_unexpected_error_is_a_500_that_says_nothing_and_is_logged_masked(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="hub.errors"):
        async with _client(_tiny()) as http:
            r = await http.get("/boom", params={"id": ID})
    assert r.status_code == 500 and _is_problem(r)
    assert r.json() == {"type": "urn:nanjing-hub:problem:internal", "title": "Internal error",
                        "status": 500, "detail": "the hub failed to answer this request; the "
                        "failure is logged", "instance": "/boom", "code": "INTERNAL"}
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "RuntimeError" in logged and MASKED in logged and ID not in logged


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("validation", 422, "VALIDATION"), ("rejected", 422, "E12"), ("client", 502, "CLIENT_ERROR"),
    ("timeout", 504, "TIMEOUT"), ("unavailable", 503, "UNAVAILABLE")])
async def test_a_hub_error_a_route_lets_through_is_a_problem_with_its_code(
        kind: str, status: int, code: str) -> None:
    async with _client(_tiny()) as http:
        r = await http.get(f"/hub/{kind}")
    assert r.status_code == status and _is_problem(r) and r.json()["code"] == code
    assert ID not in r.text
    if kind == "validation":
        assert r.json()["errors"] == [{"loc": ["body", "payload", "id_number"],
                                       "field": "payload.id_number", "msg": f"bad {MASKED}",
                                       "type": "invalid"}]
    if kind == "rejected":
        assert r.json()["detail"] == "单位未登记"
    if kind == "timeout":
        assert r.json()["partner"] == "tax"


async def test_a_route_raising_problem_and_a_bad_body() -> None:
    async with _client(_tiny()) as http:
        r = await http.get("/own")
        assert r.status_code == 409 and _is_problem(r)
        assert r.json() == {"type": "urn:nanjing-hub:problem:busy", "title": "Conflict",
                            "status": 409, "detail": "busy", "instance": "/own",
                            "code": "BUSY", "job_id": "j1"}
        r = await http.post("/body", json={"n": 0})
        assert r.status_code == 422 and [(e["field"], e["type"]) for e in r.json()["errors"]] \
            == [("n", "greater_than_equal")]


def test_a_services_answer_becomes_a_problem_only_when_it_is_an_error() -> None:
    ok = answer(200, {"accepted": True, "refused": []})
    assert ok.media_type == "application/json" and ok.status_code == 200
    bad = answer(404, {"accepted": False, "refused": [
        {"row": 3, "field": "id_number", "reason": f"no person {ID}"}], "order_no": "X1"})
    assert bad.status_code == 404 and bad.media_type == PROBLEM_JSON
    text = bytes(bad.body).decode()
    assert ID not in text and MASKED in text
    import json
    doc = json.loads(text)
    assert doc["accepted"] is False and doc["order_no"] == "X1" and "refused" not in doc
    assert doc["errors"] == [{"loc": ["body", "rows", 3, "id_number"], "field": "id_number",
                              "msg": f"no person {MASKED}", "type": "invalid", "row": 3}]
    assert doc["detail"] == f"id_number: no person {MASKED}"


def test_a_header_is_located_in_the_header() -> None:
    [e] = field_errors_of([("X-Partner-Signature", "does not match")])
    assert e["loc"] == ["header", "X-Partner-Signature"]


async def test_a_lost_server_connection_is_a_503_to_send_again_not_a_500() -> None:
    """A door that cannot publish because the broker client is being rebuilt (a cluster
    node lost: ``broker.rabbit.BrokerGone`` is a ``ConnectionError``) answers 503 with
    Retry-After, so the partner sends again; anything else unexpected stays a 500."""
    from fastapi import FastAPI

    from api.problems import install_problem_handlers
    from broker.rabbit import BrokerGone

    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/gone")
    async def gone() -> None:
        raise BrokerGone("no broker client")

    @app.post("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as http:
        r = await http.post("/gone")
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["code"] == "UNAVAILABLE"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await http.post("/bug")).status_code == 500
