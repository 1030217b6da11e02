"""The F1 ingress over HTTP: refusals name their field and leave no trace but the log;
accepted applications are stored once and published once."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.channels.auth import (
    HEADER_API_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MemoryNonceStore,
    applications_target,
    signed_headers,
)
from api.app import build_app
from api.deps import ApiState
from broker.topology import Names
from config.settings import ChannelConfig, HubSettings, load_settings
from contracts.channels import APPLICATION_TYPES, TAX_OPERATION
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.messages import APPLICATION as MESSAGE_TYPE
from services.deps import Deps
from storage.applications import ApplicationStore, mask_payload
from storage.audit import AuditLog
from storage.deadletters import DeadLetterStore
from storage.journal import Journal, make_engine
from tools.fixtures.generate_channels import REFERENCE_DAY, sample

SECRETS = {"my_nanjing": "mn-secret-0123456789", "gov_office": "go-secret-0123456789",
           "online_hall": "oh-secret-0123456789"}
HRSS_KEY = "hrss-api-key-0123456789"
MAX_BODY = 8192


@dataclass
class FakePublisher:
    sent: list[HubMessage] = field(default_factory=list)
    fail: bool = False

    async def publish(self, msg: HubMessage) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        self.sent.append(msg)


@dataclass
class Hub:
    client: httpx.AsyncClient
    store: ApplicationStore
    publisher: FakePublisher
    nonces: MemoryNonceStore
    engine: AsyncEngine
    app: FastAPI

    async def rejected_log_entries(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text(
                "SELECT count(*) FROM interaction_log WHERE outcome = 'rejected'"))).scalar_one())


def _settings() -> HubSettings:
    channels = {name: ChannelConfig(secret=SecretStr(s), callback_url=f"http://cb/{name}")
                for name, s in SECRETS.items()}
    channels["hrss"] = ChannelConfig(auth="api-key", secret=SecretStr(HRSS_KEY))
    return load_settings(env={}, settings_file="/nonexistent/hub.toml",
                         max_body_bytes=MAX_BODY, channels=channels)


@pytest.fixture
async def hub(template_db: Path, tmp_path: Path) -> AsyncIterator[Hub]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    store, publisher, nonces = ApplicationStore(engine), FakePublisher(), MemoryNonceStore()
    deps = Deps(settings=_settings(), tax=None, core=None, idem=None,  # type: ignore[arg-type]
                journal=Journal(engine), publisher=publisher,  # type: ignore[arg-type]
                owner="test", names=Names("t"), applications=store,  # type: ignore[arg-type]
                nonces=nonces)
    app = build_app(ApiState(deps=deps, audit=AuditLog(engine),
                             dead_letters=DeadLetterStore(engine), today=lambda: REFERENCE_DAY))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://hub") as client:
            yield Hub(client, store, publisher, nonces, engine, app)
    finally:
        await engine.dispose()


def body_of(app_type: str = "resident_enroll", *, request_id: str | None = None,
            **envelope: Any) -> bytes:
    doc = sample(app_type) | envelope
    if request_id is not None:
        doc["request_id"] = request_id
    return json.dumps(doc, ensure_ascii=False).encode()


def auth_headers(channel: str, body: bytes, *, now: float | None = None,
                 method: str = "POST", target: str | None = None,
                 signer: str | None = None) -> dict[str, str]:
    """``channel``'s headers for ``method target`` (default: a submission); ``signer``
    signs with another channel's secret and name."""
    if channel == "hrss":
        return {HEADER_API_KEY: HRSS_KEY}
    who = signer or channel
    return signed_headers(SECRETS.get(who, "unknown-secret"), body, method=method,
                          target=target or applications_target(channel), channel=who, now=now)


async def post(hub: Hub, channel: str, body: bytes, *, headers: dict[str, str] | None = None,
               content_type: str | None = "application/json") -> httpx.Response:
    h = auth_headers(channel, body) if headers is None else dict(headers)
    if content_type is not None:
        h["Content-Type"] = content_type
    return await hub.client.post(f"/channels/{channel}/applications", content=body, headers=h)


def status_headers(channel: str, app_id: str) -> dict[str, str]:
    return auth_headers(channel, b"", method="GET",
                        target=f"/channels/{channel}/applications/{app_id}")


async def get(hub: Hub, channel: str, app_id: str,
              headers: dict[str, str] | None = None) -> httpx.Response:
    h = status_headers(channel, app_id) if headers is None else headers
    return await hub.client.get(f"/channels/{channel}/applications/{app_id}", headers=h)


def fields(resp: httpx.Response) -> list[str]:
    assert resp.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in resp.json()["errors"]]


# ---------------------------------------------------------------- bad inputs


@dataclass(frozen=True)
class Bad:
    """One bad request: how to build it, and the status and field it must get."""

    status: int
    field: str
    channel: str = "my_nanjing"
    app_type: str = "resident_enroll"
    payload: dict[str, Any] | None = None  # changes; ... removes
    envelope: dict[str, Any] | None = None
    raw: bytes | None = None
    headers: dict[str, str | None] | None = None  # changes; None removes
    sign_channel: str | None = None  # sign as another channel
    skew_s: float = 0
    content_type: str | None = "application/json"
    replay: bool = False

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        doc: dict[str, Any] = sample(self.app_type) | (self.envelope or {})
        if self.payload:
            data = dict(doc["payload"])
            for k, v in self.payload.items():
                if v is ...:
                    data.pop(k, None)
                else:
                    data[k] = v
            doc["payload"] = data
        return json.dumps(doc, ensure_ascii=False).encode()

    @property
    def journalled(self) -> bool:
        """Refused before the channel was authenticated (unknown channel, size, media
        type, authentication): logged, never journaled, so a flood cannot grow the journal."""
        return self.status not in (401, 404, 413, 415)

    def make_headers(self, body: bytes) -> dict[str, str]:
        h = auth_headers(self.channel, body, now=time.time() + self.skew_s,
                         signer=self.sign_channel)
        for k, v in (self.headers or {}).items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        return h


FIXTURE_ID = sample("resident_enroll")["payload"]["id_number"]
WRONG_CHECK = FIXTURE_ID[:17] + ("0" if FIXTURE_ID[17] != "0" else "1")

BAD: dict[str, Bad] = {
    # payload rules (422, payload.<field>)
    "bad checksum": Bad(422, "payload.id_number", payload={"id_number": WRONG_CHECK}),
    "short id": Bad(422, "payload.id_number", payload={"id_number": "3201021972"}),
    "wrong birth date": Bad(422, "payload.birth_date", payload={"birth_date": "1972-01-01"}),
    "wrong gender": Bad(422, "payload.gender", payload={"gender": "2"}),
    "missing name": Bad(422, "payload.name", payload={"name": ...}),
    "special name": Bad(422, "payload.name", payload={"name": "赵#建国"}),
    "missing phone": Bad(422, "payload.phone", payload={"phone": ...}),
    "bad phone": Bad(422, "payload.phone", payload={"phone": "1234"}),
    "missing household address": Bad(422, "payload.household_address",
                                     payload={"household_address": ...}),
    "missing residence address": Bad(422, "payload.residence_address",
                                     payload={"residence_address": ""}),
    "community format": Bad(422, "payload.community", payload={"community": "3201020010"}),
    "community outside Nanjing": Bad(422, "payload.community",
                                     payload={"community": "320200001001"}),
    "subsidy vs type": Bad(422, "payload.subsidy_type", payload={"subsidy_type": "03"}),
    "newborn too old": Bad(422, "payload.birth_date", app_type="newborn_enroll",
                           payload={"id_number": FIXTURE_ID}),
    "temp id mismatch": Bad(422, "payload.temp_id_number", app_type="pre_newborn_enroll",
                            payload={"temp_id_number": "Z" + FIXTURE_ID + "1"}),
    "unknown payload field": Bad(422, "payload.nickname", payload={"nickname": "老赵"}),
    "bad credit code": Bad(422, "payload.unit_credit_code", channel="online_hall",
                           app_type="unit_maintain",
                           payload={"unit_credit_code": "91320100MA1ABCDE1X"}),
    # envelope (422)
    "unknown type": Bad(422, "type", envelope={"type": "lottery_enroll"}),
    "missing request id": Bad(422, "request_id", raw=json.dumps(
        {k: v for k, v in sample("resident_enroll").items() if k != "request_id"}).encode()),
    "bad request id": Bad(422, "request_id", envelope={"request_id": "a/b"}),
    "callback override": Bad(422, "callback_url",
                             envelope={"callback_url": "http://evil.example/steal"}),
    "payload not object": Bad(422, "payload", envelope={"payload": "x"}),
    # body (400, 413, 415)
    "bad JSON": Bad(400, "body", raw=b'{"type": "resident_enroll",'),
    "JSON array": Bad(400, "body", raw=b"[1, 2]"),
    "JSON NaN": Bad(400, "body", raw=b'{"type": NaN}'),
    "not UTF-8": Bad(400, "body", raw=b'{"type": "\xff\xfe"}'),
    "deeply nested JSON": Bad(422, "body", raw=b'{"type": ' + b"[" * 3000 + b"]" * 3000 + b"}"),
    "oversize body": Bad(413, "body", payload={"residence_address": "长" * 4000}),
    "wrong content type": Bad(415, "Content-Type", content_type="text/plain"),
    "no content type": Bad(415, "Content-Type", content_type=None),
    "latin-1 charset": Bad(415, "Content-Type",
                           content_type="application/json; charset=latin-1"),
    # authentication (401) and authorisation (403), unknown channel (404)
    "bad signature": Bad(401, HEADER_SIGNATURE, headers={HEADER_SIGNATURE: "ab" * 32}),
    "signed by another channel": Bad(401, HEADER_SIGNATURE, sign_channel="gov_office"),
    "replayed nonce": Bad(401, HEADER_NONCE, replay=True),
    "stale timestamp": Bad(401, HEADER_TIMESTAMP, skew_s=-301),
    "future timestamp": Bad(401, HEADER_TIMESTAMP, skew_s=+400),
    "missing signature": Bad(401, HEADER_SIGNATURE, headers={HEADER_SIGNATURE: None}),
    "missing timestamp": Bad(401, HEADER_TIMESTAMP, headers={HEADER_TIMESTAMP: None}),
    "missing nonce": Bad(401, HEADER_NONCE, headers={HEADER_NONCE: None}),
    "short nonce": Bad(401, HEADER_NONCE, headers={HEADER_NONCE: "abc"}),
    "wrong API key": Bad(401, HEADER_API_KEY, channel="hrss", app_type="retire",
                         headers={HEADER_API_KEY: "guess-0123456789"}),
    "missing API key": Bad(401, HEADER_API_KEY, channel="hrss", app_type="retire",
                           headers={HEADER_API_KEY: None}),
    "wrong channel for type": Bad(403, "type", app_type="retire"),
    "gov_office asks resident": Bad(403, "type", channel="gov_office"),
    "unknown channel": Bad(404, "channel", channel="wechat"),
}


@pytest.mark.parametrize("case", list(BAD.values()), ids=list(BAD))
async def test_a_bad_request_is_refused_with_its_field_and_leaves_nothing(
        hub: Hub, case: Bad) -> None:
    body = case.body()
    headers = case.make_headers(body)
    if case.replay:
        assert await hub.nonces.seen(case.channel, headers[HEADER_NONCE], 600) is False
    resp = await post(hub, case.channel, body, headers=headers, content_type=case.content_type)
    assert resp.status_code == case.status, resp.text
    detail = resp.json()
    assert case.field in fields(resp), detail
    assert detail["code"] and detail["detail"] and detail["status"] == case.status
    assert all(e["msg"] for e in detail["errors"])
    assert await hub.store.count() == 0
    assert hub.publisher.sent == []
    assert await hub.rejected_log_entries() == (1 if case.journalled else 0)


def test_there_are_at_least_thirty_distinct_bad_inputs() -> None:
    assert len(BAD) >= 30


async def test_a_chunked_oversize_body_is_cut_off_while_reading(hub: Hub) -> None:
    big = b'{"type": "resident_enroll", "pad": "' + b"x" * (MAX_BODY + 10) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    headers = auth_headers("my_nanjing", big) | {"Content-Type": "application/json"}
    resp = await hub.client.post("/channels/my_nanjing/applications", content=chunks(),
                                 headers=headers)
    assert resp.status_code == 413 and fields(resp) == ["body"]
    assert await hub.store.count() == 0 and hub.publisher.sent == []


async def test_a_refusal_in_the_log_is_masked(hub: Hub) -> None:
    case = BAD["wrong birth date"]
    body = case.body()
    await post(hub, "my_nanjing", body, headers=case.make_headers(body))
    async with hub.engine.connect() as conn:
        detail = (await conn.execute(text("SELECT detail FROM interaction_log"))).scalar_one()
    assert "payload.birth_date" in detail and FIXTURE_ID not in detail


# ---------------------------------------------------------------- accepted applications

FIRST_CHANNEL = {t: APPLICATION_TYPES[t].channels[0] for t in APPLICATION_TYPES}


@pytest.mark.parametrize("app_type", list(APPLICATION_TYPES))
async def test_every_fixture_is_accepted_and_published_once(hub: Hub, app_type: str) -> None:
    channel = FIRST_CHANNEL[app_type]
    resp = await post(hub, channel, body_of(app_type))
    assert resp.status_code == 202, resp.text
    out = resp.json()
    assert out["status"] == "validated" and out["duplicate"] is False
    [msg] = hub.publisher.sent
    request_id = sample(app_type)["request_id"]
    assert (msg.type, msg.source, msg.target) == (MESSAGE_TYPE, f"channel.{channel}", "core")
    assert msg.correlation_id == out["application_id"]
    assert msg.payload["application_id"] == out["application_id"]
    assert (msg.payload["channel"], msg.payload["type"], msg.payload["request_id"]) == (
        channel, app_type, request_id)
    assert msg.payload["tax_operation"] == TAX_OPERATION[app_type]
    assert msg.idempotency_key == idempotency_key(MESSAGE_TYPE, f"{channel}:{request_id}",
                                                  msg.payload["payload"])
    data = sample(app_type)["payload"]
    if "id_number" in data:
        assert msg.entity_key == entity_key("psn", data["id_number"])
    row = await hub.store.get(out["application_id"])
    assert row is not None and row["status"] == "validated" and row["type"] == app_type


async def test_a_repeated_request_id_returns_the_first_application(hub: Hub) -> None:
    first = await post(hub, "my_nanjing", body_of())
    again = await post(hub, "my_nanjing", body_of())  # new nonce, same request
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == {"application_id": first.json()["application_id"],
                            "status": "validated", "duplicate": True}
    assert len(hub.publisher.sent) == 1 and await hub.store.count() == 1
    await hub.store.set_status(first.json()["application_id"], "rejected",
                               reason_field="community", reason="TX301 unknown community")
    third = await post(hub, "my_nanjing", body_of())
    assert third.json()["status"] == "rejected" and len(hub.publisher.sent) == 1


async def test_a_request_id_reused_for_another_payload_is_a_conflict(hub: Hub) -> None:
    first = await post(hub, "my_nanjing", body_of())
    other = body_of("student_enroll", request_id=sample("resident_enroll")["request_id"])
    resp = await post(hub, "my_nanjing", other)
    assert resp.status_code == 409 and fields(resp) == ["request_id"]
    assert resp.json()["application_id"] == first.json()["application_id"]
    assert len(hub.publisher.sent) == 1 and await hub.store.count() == 1


async def test_the_same_request_id_on_two_channels_is_two_applications(hub: Hub) -> None:
    a = await post(hub, "my_nanjing", body_of())
    b = await post(hub, "online_hall", body_of())
    assert a.status_code == b.status_code == 202
    assert a.json()["application_id"] != b.json()["application_id"]
    assert await hub.store.count() == 2


async def test_concurrent_repeats_make_one_application(hub: Hub) -> None:
    resps = await asyncio.gather(*(post(hub, "my_nanjing", body_of()) for _ in range(5)))
    assert {r.status_code for r in resps} <= {200, 202}
    assert len({r.json()["application_id"] for r in resps}) == 1
    assert await hub.store.count() == 1
    assert len({m.idempotency_key for m in hub.publisher.sent}) == 1


async def test_a_broker_failure_keeps_the_application_for_the_retry(hub: Hub) -> None:
    hub.publisher.fail = True
    resp = await post(hub, "my_nanjing", body_of())
    assert resp.status_code == 503 and fields(resp) == ["broker"]
    app_id = resp.json()["application_id"]
    row = await hub.store.get(app_id)
    assert row is not None and row["status"] == "received"
    hub.publisher.fail = False
    retry = await post(hub, "my_nanjing", body_of())
    assert retry.status_code == 202
    assert retry.json() == {"application_id": app_id, "status": "validated",
                            "duplicate": False}
    [msg] = hub.publisher.sent
    assert msg.correlation_id == app_id


async def test_api_key_channels_submit_too(hub: Hub) -> None:
    resp = await post(hub, "hrss", body_of("retire"))
    assert resp.status_code == 202 and len(hub.publisher.sent) == 1


async def test_the_stored_payload_is_masked(hub: Hub) -> None:
    resp = await post(hub, "my_nanjing", body_of("pre_newborn_enroll"))
    row = await hub.store.get(resp.json()["application_id"])
    assert row is not None
    mother = sample("pre_newborn_enroll")["payload"]["mother_id_number"]
    stored = json.dumps(row["payload_masked"], ensure_ascii=False)
    assert mother not in stored and mother[6:14] not in stored
    assert "13851700004" not in stored and "李宝宝" not in stored
    # the pipeline gets the full payload
    assert hub.publisher.sent[0].payload["payload"]["mother_id_number"] == mother
    person = {"birth_date": "2003-03-03", "residence_address": "南京市鼓楼区某路1号"}
    assert mask_payload({"legal_rep": "李强", "persons": [person]}) == {
        "legal_rep": "李*",
        "persons": [{"birth_date": "2003-**-**", "residence_address": "南京市鼓楼区***"}]}


# ---------------------------------------------------------------- status


async def test_status_is_the_channels_own(hub: Hub) -> None:
    app_id = (await post(hub, "my_nanjing", body_of())).json()["application_id"]
    resp = await get(hub, "my_nanjing", app_id)
    assert resp.status_code == 200
    view = resp.json()
    assert (view["application_id"], view["status"], view["channel"]) == (
        app_id, "validated", "my_nanjing")
    assert view["type"] == "resident_enroll" and view["completed_at"] is None
    assert (await get(hub, "online_hall", app_id)).status_code == 404
    assert fields(await get(hub, "my_nanjing", "0" * 32)) == ["application_id"]
    assert (await get(hub, "my_nanjing", "not-an-id")).status_code == 404
    assert (await get(hub, "wechat", app_id)).status_code == 404


async def test_status_shows_the_rejection_reason(hub: Hub) -> None:
    app_id = (await post(hub, "my_nanjing", body_of())).json()["application_id"]
    await hub.store.set_status(app_id, "registered", core_ref="CORE-1")
    await hub.store.set_status(app_id, "rejected", reason_field="community",
                               reason="TX301 基层医保区划 unknown to tax")
    view = (await get(hub, "my_nanjing", app_id)).json()
    assert (view["status"], view["reason_field"], view["core_ref"]) == (
        "rejected", "community", "CORE-1")
    assert "TX301" in view["reason"] and view["completed_at"] is not None


@pytest.mark.parametrize(("change", "field"), [
    ({HEADER_SIGNATURE: "ab" * 32}, HEADER_SIGNATURE),
    ({HEADER_TIMESTAMP: "1"}, HEADER_TIMESTAMP),
])
async def test_status_needs_a_signature_over_the_empty_body(
        hub: Hub, change: dict[str, str], field: str) -> None:
    app_id = (await post(hub, "my_nanjing", body_of())).json()["application_id"]
    resp = await get(hub, "my_nanjing", app_id, status_headers("my_nanjing", app_id) | change)
    assert resp.status_code == 401 and fields(resp) == [field]
    headers = status_headers("my_nanjing", app_id)
    assert (await get(hub, "my_nanjing", app_id, headers)).status_code == 200
    replay = await get(hub, "my_nanjing", app_id, headers)
    assert replay.status_code == 401 and fields(replay) == [HEADER_NONCE]


async def test_the_endpoints_are_in_the_openapi_document(hub: Hub) -> None:
    doc = hub.app.openapi()
    post_op = doc["paths"]["/channels/{channel}/applications"]["post"]
    assert "202" in post_op["responses"] and "422" in post_op["responses"]
    assert "request_id" in json.dumps(post_op["requestBody"])
    names = {p["name"] for p in post_op["parameters"]}
    assert {HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_API_KEY} <= names
    assert "/channels/{channel}/applications/{application_id}" in doc["paths"]



# ---------------------------------------------------------------- the store and its table


async def test_the_store_creates_once_and_moves_forward_only(hub: Hub) -> None:
    store = hub.store
    row, created = await store.create("my_nanjing", "r-1", "resident_enroll", {"a": 1})
    again, created_again = await store.create("my_nanjing", "r-1", "resident_enroll", {"a": 2})
    assert created and not created_again and again["id"] == row["id"]
    assert again["payload_hash"] == row["payload_hash"]  # the first one's
    app_id = row["id"]
    assert await store.set_status(app_id, "registered", core_ref="C-1")
    assert not await store.set_status(app_id, "validated")  # never backwards
    assert await store.set_status(app_id, "synced", tax_serials=["S1", "S2"])
    assert await store.set_status(app_id, "synced", tax_serials=["S2", "S3"])
    assert await store.set_status(app_id, "completed")
    assert not await store.set_status(app_id, "rejected", reason="late")  # final stays
    got = await store.get(app_id)
    assert got is not None
    assert (got["status"], got["core_ref"], got["tax_serials"]) == (
        "completed", "C-1", ["S1", "S2", "S3"])
    assert got["completed_at"] is not None and got["completed_at"].tzinfo is not None
    assert await store.set_status(app_id, "synced", only_if_not_final=False)  # correction
    reopened = await store.get(app_id)
    assert reopened is not None and reopened["completed_at"] is None
    assert not await store.set_status("f" * 32, "validated")
    with pytest.raises(ValueError, match="unknown status"):
        await store.set_status(app_id, "done")
    assert await store.get_for_channel("online_hall", app_id) is None
    assert reopened["parts"] == {}
    await store.set_parts(app_id, {"expected": 2, "results": {"x-1": {"status": "synced"}}})
    parts = (await store.get(app_id) or {})["parts"]
    assert parts == {"expected": 2, "results": {"x-1": {"status": "synced"}}}
    assert await store.count("my_nanjing") == 1 and await store.count("hrss") == 0


async def test_concurrent_status_writers_lose_nothing(hub: Hub) -> None:
    row, _ = await hub.store.create("my_nanjing", "r-2", "graduate_stop_batch", {})
    await asyncio.gather(*(hub.store.set_status(row["id"], "synced", tax_serials=[f"S{i}"])
                           for i in range(5)))
    got = await hub.store.get(row["id"])
    assert got is not None and sorted(got["tax_serials"]) == [f"S{i}" for i in range(5)]


def test_the_hand_written_migration_matches_the_model(template_db: Path, tmp_path: Path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    import storage.application_models  # noqa: F401  (registers the table on Base)
    from storage.migrate import _ROOT
    from storage.models import Base

    path = tmp_path / "m.db"
    shutil.copy(template_db, path)
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diffs if "applications" in repr(d)] == []
        cfg = Config(str(_ROOT / "alembic.ini"))
        cfg.set_main_option("script_location", str(_ROOT / "alembic"))
        cfg.set_main_option("sqlalchemy.url", f"sqlite+aiosqlite:///{path}")
        command.downgrade(cfg, "0003")
        with engine.connect() as conn:
            tables = {r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'table'"))}
        assert "applications" not in tables and "returnfile_files" in tables
    finally:
        engine.dispose()
