"""The partner doors authenticate their callers: core events and tax callbacks need the
partner's HMAC signature over the canonical request, queries a signed partner or a bearer
token with a query role. A refusal is 401/403, logged once a minute per caller and
reason, and leaves no journal row; bodies are bounded (413) and JSON depth too (422)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.signing import MemoryNonceStore, SignedAuth
from adapters.tax.soap import (
    build_feedback_request,
    build_request,
    parse_feedback_reply,
    parse_reply,
)
from api.app import build_app
from api.auth import Authenticator, Principal, hash_token
from api.callers import refusals
from api.deps import ApiState
from broker.topology import Names
from config.settings import HubSettings, PartnerConfig, load_settings
from contracts.employee import TaxFeedback
from contracts.national import NationalRequest, make_msgid, now_cst
from contracts.signing import PARTNER_HEADERS
from contracts.taxcat import op as catalogue_op
from services.deps import Deps
from storage.audit import AuditLog
from storage.deadletters import DeadLetterStore
from storage.journal import Journal, make_engine
from tests.support.fakes import FakeCore, FakePublisher, FakeTax
from tools.fixtures.generate_catalogue import ROOT as CATALOGUE

CORE_SECRET = "core-secret-0123456789"
TAX_SECRET = "tax-secret-0123456789"
MAX_BODY = 8192
SOAP = {"Content-Type": "text/xml; charset=utf-8"}
TOKENS = {role: f"tok-{role}-0123456789" for role in
          ("caseworker", "operations", "tester", "readonly", "admin")}
ARREARS_ID = json.loads((CATALOGUE / "QueryPersonArrears.json").read_text(
    encoding="utf-8"))["payload"]["id_number"]


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@dataclass
class Hub:
    http: httpx.AsyncClient
    publisher: FakePublisher
    tax: FakeTax
    engine: AsyncEngine

    async def journal_rows(self) -> int:
        total = 0
        async with self.engine.connect() as conn:
            for table in ("interaction_log", "transactions"):
                total += int((await conn.execute(text(f"SELECT count(*) FROM {table}")))
                             .scalar_one())
        return total


def _settings() -> HubSettings:
    partners = {
        "core": PartnerConfig(protocol="http-json", endpoint="http://core.test",
                              secret=SecretStr(CORE_SECRET)),
        "tax": PartnerConfig(protocol="soap", endpoint="http://tax.test/tax/ws",
                             secret=SecretStr(TAX_SECRET)),
    }
    return load_settings(env={}, settings_file="/nonexistent/hub.toml",
                         max_body_bytes=MAX_BODY, partners=partners)


async def _hub(template_db: Path, tmp_path: Path, *, nonces: bool = True
               ) -> tuple[Hub, Any]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    publisher, tax = FakePublisher(), FakeTax(rows=[{"zjhm": ARREARS_ID, "qfje": "10.00"}])
    deps = Deps(settings=_settings(), tax=tax, core=FakeCore(),
                idem=None, journal=Journal(engine), publisher=publisher,  # type: ignore[arg-type]
                owner="test", names=Names("t"),
                nonces=MemoryNonceStore() if nonces else None)
    auth = Authenticator({hash_token(t): Principal(f"user-{r}", r)  # type: ignore[arg-type]
                          for r, t in TOKENS.items()}, None)
    app = build_app(ApiState(deps=deps, audit=AuditLog(engine),
                             dead_letters=DeadLetterStore(engine), auth=auth))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")
    return Hub(http, publisher, tax, engine), engine


@pytest.fixture
async def hub(template_db: Path, tmp_path: Path) -> AsyncIterator[Hub]:
    refusals.reset()
    h, engine = await _hub(template_db, tmp_path)
    try:
        async with h.http:
            yield h
    finally:
        await engine.dispose()


CORE = SignedAuth("core", CORE_SECRET)
TAX = SignedAuth("tax", TAX_SECRET)


def core_event(i: int = 0) -> dict[str, Any]:
    o = catalogue_op("EmployeeEnroll")
    doc = json.loads((CATALOGUE / "EmployeeEnroll.json").read_text(encoding="utf-8"))
    req = NationalRequest(infno=o.core_infno, msgid=make_msgid("NJYBCORE0001", now_cst(), i),
                          input={"data": doc["core"]})
    return req.model_dump(mode="json", exclude_none=True)


def feedback() -> bytes:
    return build_feedback_request(TaxFeedback(
        accept_no="SL1", biz_msg_id="m1", operation="EmployeeEnroll",
        id_number=ARREARS_ID, status="accepted"))


def push() -> bytes:
    doc = json.loads((CATALOGUE / "AbnormalUnitNotify.json").read_text(encoding="utf-8"))
    return build_request("AbnormalUnitNotify", doc["payload"], "PUSH-1", "TAXSYS")


DOORS: dict[str, dict[str, Any]] = {
    "core events": {"url": "/partners/core/events", "json": core_event()},
    "tax callback": {"url": "/partners/tax/callback", "content": feedback(), "headers": SOAP},
    "queries": {"url": "/queries/tax/person_arrears", "json": {"id_number": ARREARS_ID}},
}


async def call(hub: Hub, door: str, **extra: Any) -> httpx.Response:
    spec = DOORS[door]
    kwargs = {k: v for k, v in spec.items() if k != "url"} | extra
    return await hub.http.post(spec["url"], **kwargs)


def refused_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hub.callers"]


# ---------------------------------------------------------------- nobody gets in unsigned


@pytest.mark.parametrize("door", list(DOORS))
async def test_an_unsigned_call_to_a_partner_door_is_refused_401_and_leaves_no_journal_row(
        hub: Hub, door: str) -> None:
    resp = await call(hub, door)
    assert resp.status_code == 401, resp.text
    assert hub.publisher.sent == [] and hub.tax.queries == []
    assert await hub.journal_rows() == 0


@pytest.mark.parametrize("door", list(DOORS))
async def test_an_anonymous_flood_is_logged_once_and_grows_no_journal(
        hub: Hub, door: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hub.callers")
    for _ in range(50):
        assert (await call(hub, door)).status_code == 401
    assert len(refused_lines(caplog)) == 1, refused_lines(caplog)
    assert await hub.journal_rows() == 0 and hub.publisher.sent == []


def test_the_refusal_log_writes_one_line_per_caller_and_reason_per_minute() -> None:
    t = [0.0]
    log = type(refusals)(every_s=60, clock=lambda: t[0])
    assert log.refused("core events", "anonymous@1.2.3.4", 401, "X-Partner", "missing")
    assert not log.refused("core events", "anonymous@1.2.3.4", 401, "X-Partner", "missing")
    assert log.refused("core events", "anonymous@1.2.3.4", 401, "X-Partner-Nonce", "used")
    assert log.refused("core events", "core", 401, "X-Partner", "missing")
    t[0] = 61.0
    assert log.refused("core events", "anonymous@1.2.3.4", 401, "X-Partner", "missing")


# ---------------------------------------------------------------- core events


async def test_a_core_event_signed_by_core_is_taken_and_published(hub: Hub) -> None:
    resp = await call(hub, "core events", auth=CORE)
    assert resp.status_code == 200, resp.text
    assert resp.json()["infcode"] == 0 and len(hub.publisher.sent) == 1


def _headers(secret: str, *, caller: str = "core", now: float | None = None,
             nonce: str | None = None, method: str = "POST",
             target: str = "/partners/core/events", body: bytes) -> dict[str, str]:
    from contracts.signing import signed_headers

    return signed_headers(secret, method=method, target=target, caller=caller, body=body,
                          names=PARTNER_HEADERS, now=now, nonce=nonce)


BODY = json.dumps(core_event(1)).encode()


@pytest.mark.parametrize(("make", "field"), [
    (lambda: _headers("not-the-secret-0123", body=BODY), PARTNER_HEADERS.signature),
    (lambda: _headers(CORE_SECRET, now=time.time() - 301, body=BODY), PARTNER_HEADERS.timestamp),
    (lambda: _headers(CORE_SECRET, now=time.time() + 400, body=BODY), PARTNER_HEADERS.timestamp),
    (lambda: _headers(CORE_SECRET, body=BODY + b" "), PARTNER_HEADERS.signature),
    (lambda: _headers(CORE_SECRET, target="/partners/core/events?x=1", body=BODY),
     PARTNER_HEADERS.signature),
    (lambda: _headers(CORE_SECRET, method="PUT", body=BODY), PARTNER_HEADERS.signature),
    (lambda: _headers(CORE_SECRET, nonce="short", body=BODY), PARTNER_HEADERS.nonce),
    (lambda: {k: v for k, v in _headers(CORE_SECRET, body=BODY).items()
      if k != PARTNER_HEADERS.nonce}, PARTNER_HEADERS.nonce),
    (lambda: _headers(CORE_SECRET, body=BODY) | {PARTNER_HEADERS.caller or "": "bank"},
     PARTNER_HEADERS.caller),
    (lambda: _headers(CORE_SECRET, caller="transfer", body=BODY), PARTNER_HEADERS.caller),
], ids=["wrong-secret", "stale", "future", "other-body", "other-target", "other-method",
        "bad-nonce", "no-nonce", "claims-other-partner", "unknown-partner"])
async def test_a_bad_core_signature_is_refused_naming_the_header(
        hub: Hub, make: Callable[[], dict[str, str]], field: str) -> None:
    headers = make()  # signed now: a stamp made at collection would go stale in a long run
    resp = await hub.http.post("/partners/core/events", content=BODY,
                               headers=headers | {"Content-Type": "application/json"})
    assert resp.status_code == 401, resp.text
    out = resp.json()
    assert out["infcode"] == -1 and out["err_msg"].startswith(field)
    assert out["output"]["err_code"] == "UNAUTHORIZED"
    assert hub.publisher.sent == [] and await hub.journal_rows() == 0


async def test_a_replayed_core_call_is_refused(hub: Hub) -> None:
    headers = _headers(CORE_SECRET, body=BODY) | {"Content-Type": "application/json"}
    first = await hub.http.post("/partners/core/events", content=BODY, headers=headers)
    again = await hub.http.post("/partners/core/events", content=BODY, headers=headers)
    assert first.status_code == 200 and again.status_code == 401
    assert again.json()["err_msg"].startswith(PARTNER_HEADERS.nonce)
    assert len(hub.publisher.sent) == 1


async def test_a_partner_at_another_partners_door_is_forbidden(hub: Hub) -> None:
    resp = await call(hub, "core events", auth=TAX)
    assert resp.status_code == 403 and resp.json()["output"]["err_code"] == "FORBIDDEN"
    resp = await call(hub, "tax callback", auth=CORE)
    assert resp.status_code == 403 and b"Fault" in resp.content
    assert hub.publisher.sent == [] and await hub.journal_rows() == 0


async def test_a_captured_core_signature_is_refused_at_another_door(hub: Hub) -> None:
    body = json.dumps({"id_number": ARREARS_ID}).encode()
    captured = _headers(CORE_SECRET, body=body) | {"Content-Type": "application/json"}
    resp = await hub.http.post("/queries/tax/person_arrears", content=body, headers=captured)
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["field"] == PARTNER_HEADERS.signature
    assert hub.tax.queries == []


# ---------------------------------------------------------------- tax callbacks


async def test_tax_callbacks_signed_by_tax_are_taken(hub: Hub) -> None:
    resp = await call(hub, "tax callback", auth=TAX)
    assert resp.status_code == 200 and parse_feedback_reply(resp.content)[0]
    resp = await hub.http.post("/partners/tax/callback", content=push(), headers=SOAP, auth=TAX)
    assert resp.status_code == 200 and parse_reply(resp.content)[0]
    assert len(hub.publisher.sent) == 2


async def test_an_unsigned_tax_callback_gets_a_soap_fault(hub: Hub) -> None:
    resp = await hub.http.post("/partners/tax/callback", content=push(), headers=SOAP)
    assert resp.status_code == 401
    assert b"soap-env:Client" in resp.content and b"X-Partner" in resp.content
    assert resp.headers["content-type"].startswith("text/xml")


# ---------------------------------------------------------------- queries


@pytest.mark.parametrize("role", ["caseworker", "operations", "tester", "admin"])
async def test_query_roles_may_ask(hub: Hub, role: str) -> None:
    resp = await call(hub, "queries", headers=bearer(role))
    assert resp.status_code == 200, resp.text
    assert resp.json()["records"] == [{"zjhm": ARREARS_ID, "qfje": "10.00"}]


async def test_readonly_may_not_see_arrears_and_strangers_are_asked_who_they_are(
        hub: Hub) -> None:
    resp = await call(hub, "queries", headers=bearer("readonly"))
    assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN"
    resp = await call(hub, "queries", headers={"Authorization": "Bearer who-knows-0123456789"})
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert ARREARS_ID not in resp.text
    assert hub.tax.queries == [] and await hub.journal_rows() == 0


async def test_core_may_ask_by_signature_but_tax_may_not(hub: Hub) -> None:
    assert (await call(hub, "queries", auth=CORE)).status_code == 200
    resp = await call(hub, "queries", auth=TAX)
    assert resp.status_code == 403 and len(hub.tax.queries) == 1


async def test_an_unknown_query_is_not_told_to_strangers(hub: Hub) -> None:
    assert (await hub.http.post("/queries/tax/nope", json={})).status_code == 401
    resp = await hub.http.post("/queries/tax/nope", json={}, headers=bearer("caseworker"))
    assert resp.status_code == 404


async def test_a_query_refusal_does_not_echo_the_id_number(hub: Hub) -> None:
    wrong = ARREARS_ID[:17] + ("0" if ARREARS_ID[17] != "0" else "1")
    resp = await hub.http.post("/queries/tax/person_arrears", json={"id_number": wrong},
                               headers=bearer("caseworker"))
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "id_number"
    assert wrong not in resp.text and wrong[6:14] not in resp.text


# ---------------------------------------------------------------- without a nonce store


async def test_a_hub_without_a_nonce_store_refuses_signed_partners_503(
        template_db: Path, tmp_path: Path) -> None:
    h, engine = await _hub(template_db, tmp_path, nonces=False)
    try:
        async with h.http:
            resp = await call(h, "core events", auth=CORE)
            assert resp.status_code == 503 and h.publisher.sent == []
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- sizes and depth


def _chunks(data: bytes) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]
    return gen()


@pytest.mark.parametrize("door", list(DOORS))
async def test_an_oversize_body_is_refused_413_by_its_length_or_while_reading(
        hub: Hub, door: str) -> None:
    url = DOORS[door]["url"]
    big = b'{"pad": "' + b"x" * (MAX_BODY + 10) + b'"}'
    headers = {"Content-Type": "application/json"} | (bearer("caseworker")
                                                      if door == "queries" else {})
    declared = await hub.http.post(url, content=big, headers=headers)
    assert declared.status_code == 413, declared.text
    chunked = await hub.http.post(url, content=_chunks(big), headers=headers)
    assert chunked.status_code == 413, chunked.text
    assert "transfer-encoding" not in declared.request.headers
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert hub.publisher.sent == [] and hub.tax.queries == []
    assert await hub.journal_rows() == 0


DEEP = b'{"id_number": ' + b"[" * 3000 + b"]" * 3000 + b"}"  # fits in MAX_BODY


async def test_deeply_nested_json_to_a_query_is_refused_422_naming_the_body(hub: Hub) -> None:
    json_type = {"Content-Type": "application/json"}
    for resp in (
            await hub.http.post("/queries/tax/person_arrears", content=DEEP,
                                headers=bearer("caseworker") | json_type),
            await hub.http.post("/queries/tax/person_arrears", content=DEEP, headers=json_type,
                                auth=CORE)):
        assert resp.status_code == 422, resp.text
        [error] = resp.json()["errors"]
        assert error["field"] == "body" and "nested deeper than 32" in error["msg"]
    assert hub.tax.queries == []


async def test_deeply_nested_json_to_core_events_is_refused_422(hub: Hub) -> None:
    deep = json.dumps(core_event(2)).encode()[:-1] + b', "x": ' + b"[" * 40 + b"]" * 40 + b"}"
    resp = await hub.http.post("/partners/core/events", content=deep, auth=CORE,
                               headers={"Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["err_msg"].startswith("body: nested deeper than 32")
    assert hub.publisher.sent == []


async def test_the_partner_doors_document_their_headers(hub: Hub) -> None:
    doc = (await hub.http.get("/openapi.json")).json()
    for path in ("/partners/core/events", "/partners/tax/callback", "/queries/tax/{name}"):
        names = {p["name"] for p in doc["paths"][path]["post"].get("parameters", [])}
        assert {PARTNER_HEADERS.caller, PARTNER_HEADERS.signature} <= names, path
