"""``/admin/confirmations``: every role reads (masked), only a caseworker (or admin) acts,
answers name what went wrong; a migrated SQLite store, a recording publisher."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api import confirmations
from api.auth import Authenticator
from api.deps import ApiState, bind
from contracts.clock import today_beijing
from contracts.messages import SYNC, operation_message
from contracts.taxcat import op
from retry.idempotency import MemoryIdempotencyStore
from routes.confirmations import IDENTITY_CONFIRM
from storage.audit import AuditLog
from storage.confirmations import ConfirmationStore, NewCase
from storage.deadletters import DeadLetterStore
from storage.journal import make_engine
from tests.support.fakes import FakePublisher
from tests.support.ops import NAME, PHONE, PRINCIPALS, bearer, fake_deps, sqlite_url

ID = "32010219880928997X"


@dataclasses.dataclass
class Api:
    client: httpx.AsyncClient
    store: ConfirmationStore
    publisher: FakePublisher
    case_id: str


@pytest.fixture
async def api(template_db: Path, tmp_path: Path) -> AsyncIterator[Api]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    store, publisher, audit = ConfirmationStore(engine), FakePublisher(), AuditLog(engine)
    held = operation_message(op("FlexibleTerminate"), {
        "id_number": ID, "name": NAME, "stop_date": today_beijing().isoformat(),
        "reason_code": "01"}, source="core", target="tax", correlation_id="corr-api")
    case, _ = await store.open(NewCase(
        correlation_id="corr-api", type=held.type, business_key=ID, entity_key=held.entity_key,
        id_number=ID, name=NAME, held_message=held.model_dump_json(), reason_code="TX402",
        reason="身份信息不唯一"))
    await store.move(case["id"], expect=("open",), status="open", phone=PHONE, attempts=1)
    deps = dataclasses.replace(fake_deps(MemoryIdempotencyStore(), publisher),  # type: ignore[arg-type]
                               confirmations=store)
    state = ApiState(deps=deps, audit=audit, dead_letters=DeadLetterStore(engine),
                     auth=Authenticator(PRINCIPALS, audit))
    app = FastAPI()
    app.include_router(bind(confirmations.router, state))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://hub") as client:
            yield Api(client, store, publisher, case["id"])
    finally:
        await engine.dispose()


async def test_every_role_reads_masked(api: Api) -> None:
    r = await api.client.get("/admin/confirmations", headers=bearer("readonly"))
    assert r.status_code == 200
    assert r.json()["counts"]["open"] == 1 and r.json()["items"][0]["id"] == api.case_id
    for raw in (ID, NAME, PHONE):
        assert raw not in r.text
    r = await api.client.get(f"/admin/confirmations/{api.case_id}", headers=bearer("operations"))
    assert r.status_code == 200 and r.json()["status"] == "open" and ID not in r.text
    assert (await api.client.get("/admin/confirmations/" + "0" * 32,
                                 headers=bearer("readonly"))).status_code == 404
    assert (await api.client.get("/admin/confirmations")).status_code == 401


async def test_only_a_caseworker_acts(api: Api) -> None:
    body = {"action": "confirm", "reason": "citizen called"}
    r = await api.client.post(f"/admin/confirmations/{api.case_id}", json=body,
                              headers=bearer("readonly"))
    assert r.status_code == 403 and api.publisher.published == []
    r = await api.client.post(f"/admin/confirmations/{api.case_id}", json=body,
                              headers=bearer("caseworker"))
    assert r.status_code == 202 and r.json()["serial"]
    assert [m.type for m in api.publisher.published] == [IDENTITY_CONFIRM]
    r = await api.client.post(f"/admin/confirmations/{api.case_id}",
                              json={"action": "cancel", "reason": "citizen withdrew"},
                              headers=bearer("caseworker"))
    assert r.status_code == 200 and r.json()["case"]["status"] == "cancelled"
    assert api.publisher.published[-1].type == SYNC
    r = await api.client.post(f"/admin/confirmations/{api.case_id}",
                              json={"action": "cancel", "reason": "again"},
                              headers=bearer("caseworker"))
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"


async def test_a_bad_body_is_422(api: Api) -> None:
    for body in ({"action": "delete", "reason": "x"}, {"action": "confirm", "reason": ""},
                 {"action": "confirm", "reason": "x", "phone": "12345"}):
        r = await api.client.post(f"/admin/confirmations/{api.case_id}", json=body,
                                  headers=bearer("caseworker"))
        assert r.status_code == 422, body
