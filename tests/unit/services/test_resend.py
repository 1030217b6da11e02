"""补发: the pure builders, the stop route's handlers, and the admin API with fake ports.

The API runs in memory (httpx ASGITransport) over fake core/publisher ports and a
real journal on a migrated SQLite file, so the bulk selection query is the real one.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials

from api.app import build_app
from api.auth import Authenticator, Principal, Role, hash_token
from api.deps import ApiState, require_caseworker
from broker.topology import Names
from config.settings import load_settings
from contracts.employee import EmployeeEnrollment, EmployeeStop, ResendRequest, TaxAck
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerTimeout,
    PartnerUnavailable,
    ValidationFailed,
)
from contracts.ids import birth_date_of, gender_of, make_credit_code, make_id_number
from contracts.messages import ENROLL, SYNC, partner_serial
from retry.idempotency import MemoryIdempotencyStore
from routes.lanes import ROUTES
from routes.tax_submit import submit_to_tax as stop_to_tax
from routes.tax_submit import tax_failed as stop_failed
from services.deps import Deps
from services.resend import STOP, resend_messages
from services.resend_jobs import ResendJobs
from services.resend_targets import ResendFilter, select_resend_targets
from storage.deadletters import DeadLetterStore
from storage.journal import Journal, TxnUpdate, make_engine
from tests.support.fakes import FakeAudit, FakeCore, FakePublisher, FakeTax

RNG = random.Random(20260601)


def person(i: int = 0, **over: Any) -> EmployeeEnrollment:
    rng = random.Random(1000 + i)
    id_number = make_id_number(rng)
    base: dict[str, Any] = dict(
        unit_credit_code=make_credit_code(rng), unit_name="南京示例科技有限公司",
        id_number=id_number, name="张三", gender=gender_of(id_number),
        birth_date=birth_date_of(id_number), phone="13812345678", start_month="202401",
        admdvs="320102", entity_seq=3)
    return EmployeeEnrollment(**(base | over))


def ask(p: EmployeeEnrollment, action: str = "enroll", **over: Any) -> ResendRequest:
    return ResendRequest.model_validate(
        {"id_number": p.id_number, "unit_credit_code": p.unit_credit_code, "action": action,
         "reason": "税务未收到参保信息"} | over)


# ------------------------------------------------------------------ builders

def test_enroll_resend_is_a_new_transaction_from_cores_current_state() -> None:
    p = person()
    msg = resend_messages(ask(p), p, resend_id="r1", actor="li.si")
    assert (msg.type, msg.source, msg.target, msg.causation_id) == (ENROLL, "resend", "tax", "r1")
    assert msg.payload == p.model_dump(mode="json")
    assert EmployeeEnrollment.model_validate(msg.payload) == p
    assert msg.entity_key == entity_key("psn", p.id_number)
    assert msg.idempotency_key == idempotency_key(ENROLL, p.business_key, msg.payload, "r1")
    # the key core's own event would get is not the resend's: idempotency cannot swallow it
    assert msg.idempotency_key != idempotency_key(ENROLL, p.business_key, msg.payload)
    again = resend_messages(ask(p), p, resend_id="r1", actor="li.si")
    assert again.correlation_id != msg.correlation_id and again.message_id != msg.message_id


def test_two_resend_ids_are_two_keys() -> None:
    p = person()
    a = resend_messages(ask(p), p, resend_id="r1", actor="x")
    b = resend_messages(ask(p), p, resend_id="r2", actor="x")
    assert a.idempotency_key != b.idempotency_key


def test_stop_resend_carries_the_chosen_date() -> None:
    p = person()
    msg = resend_messages(ask(p, "stop", stop_date="2025-06-30", stop_reason="02"), p,
                          resend_id="r9", actor="x")
    assert msg.type == STOP
    stop = EmployeeStop.model_validate(msg.payload)
    assert stop == EmployeeStop(unit_credit_code=p.unit_credit_code, id_number=p.id_number,
                                name=p.name, stop_date=date(2025, 6, 30), reason_code="02")
    assert msg.idempotency_key == idempotency_key(STOP, p.business_key, msg.payload, "r9")


def test_not_in_core_is_a_business_rejection() -> None:
    p = person()
    with pytest.raises(BusinessRejected) as e:
        resend_messages(ask(p), None, resend_id="r1", actor="x")
    assert e.value.reason_code == "NOT_IN_CORE"


def test_stop_before_the_enrollment_starts_is_refused() -> None:
    p = person(start_month="202503")
    with pytest.raises(BusinessRejected) as e:
        resend_messages(ask(p, "stop", stop_date="2025-02-28"), p, resend_id="r", actor="x")
    assert e.value.reason_code == "STOP_BEFORE_START"
    ok = resend_messages(ask(p, "stop", stop_date="2025-03-01"), p, resend_id="r", actor="x")
    assert ok.payload["stop_date"] == "2025-03-01"


def test_core_answering_for_someone_else_is_refused() -> None:
    with pytest.raises(ValidationFailed) as e:
        resend_messages(ask(person(0)), person(1), resend_id="r1", actor="x")
    assert e.value.field == "id_number"


@pytest.mark.parametrize(("resend_id", "actor", "field"), [("", "x", "resend_id"),
                                                           ("r", " ", "actor")])
def test_resend_id_and_actor_are_required(resend_id: str, actor: str, field: str) -> None:
    p = person()
    with pytest.raises(ValidationFailed) as e:
        resend_messages(ask(p), p, resend_id=resend_id, actor=actor)
    assert e.value.field == field


# ------------------------------------------------------------------ the stop route

def _deps(tax: Any = None, core: Any = None, journal: Any = None,
          publisher: Any = None) -> Deps:
    return Deps(settings=load_settings(env={}), tax=tax or FakeTax(TaxAck(accept_no="SL0001")),
                core=core, idem=MemoryIdempotencyStore(), journal=journal, publisher=publisher,
                owner="w1", names=Names("t"))


def _stop_msg(p: EmployeeEnrollment | None = None, attempt: int = 0) -> HubMessage:
    p = p or person()
    msg = resend_messages(ask(p, "stop", stop_date="2025-06-30"), p, resend_id="r",
                          actor="x")
    return msg.model_copy(update={"attempt": attempt})


def test_the_employee_lane_binds_the_stop_type() -> None:
    """Enrollment and stop of one person share a lane, so the ordering gate covers both."""
    (route,) = [r for r in ROUTES if STOP in r.bindings]
    assert (route.name, route.partner) == ("tax.employee", "tax")
    assert route.handler is stop_to_tax and route.on_failure is stop_failed


async def test_stop_to_tax_uses_a_serial_derived_from_the_resend_key() -> None:
    tax = FakeTax(TaxAck(accept_no="SL0001"))
    msg = _stop_msg(attempt=2)
    out = await stop_to_tax(msg, _deps(tax))
    (req, serial), = tax.stops
    assert serial == partner_serial(msg) and req.stop_date == date(2025, 6, 30)
    (record,) = out.requests
    assert (record.serial, record.type, record.correlation_id, record.accept_no) == (
        partner_serial(msg), STOP, msg.correlation_id, "SL0001")
    assert record.business_key == req.business_key and record.entity_key == msg.entity_key
    assert out.txn is not None
    assert (out.txn.status, out.txn.source, out.txn.attempts) == ("submitted", "resend", 3)
    assert out.result == {"outcome": "submitted", "accept_no": "SL0001"}


async def test_stop_to_tax_names_a_bad_payload_field() -> None:
    msg = _stop_msg()
    bad = msg.model_copy(update={"payload": msg.payload | {"stop_date": "2025-13-01"}})
    with pytest.raises(ValidationFailed) as e:
        await stop_to_tax(bad, _deps())
    assert e.value.field == "payload.stop_date"


@pytest.mark.parametrize(("exc", "sync_status", "txn_status", "code"), [
    (BusinessRejected("TX301", "无有效参保记录", partner="tax"), "rejected", "rejected", "TX301"),
    (ClientError("HTTP 400", partner="tax"), "rejected", "rejected", "CLIENT_ERROR"),
    (PartnerUnavailable("HTTP 503", partner="tax"), "failed", "dead", "UNAVAILABLE"),
])
async def test_stop_failed_tells_core(exc: Any, sync_status: str, txn_status: str,
                                      code: str) -> None:
    p = person()
    msg = _stop_msg(p)
    out = await stop_failed(msg, exc, _deps())
    (note,) = out.outputs
    assert (note.type, note.correlation_id, note.causation_id) == (
        SYNC, msg.correlation_id, msg.message_id)
    assert note.payload["status"] == sync_status and note.payload["reason_code"] == code
    assert note.payload["biz_type"] == STOP and note.payload["business_key"] == p.business_key
    assert out.txn is not None and (out.txn.status, out.txn.reason_code) == (txn_status, code)


# ------------------------------------------------------------------ the admin API

@dataclass
class Api:
    http: httpx.AsyncClient
    core: FakeCore
    publisher: FakePublisher
    journal: Journal
    audit: FakeAudit
    jobs: ResendJobs


PEOPLE = [person(i) for i in range(4)]


def resend_app(deps: Deps, audit: FakeAudit, *, jobs: ResendJobs | None = None,
               auth: Authenticator | None = None) -> FastAPI:
    """The hub's app over these parts; without ``auth`` nobody signs: the actor is anonymous."""
    state = ApiState(deps=deps, audit=audit,  # type: ignore[arg-type]
                     dead_letters=DeadLetterStore(deps.journal.engine),
                     resend_jobs=jobs or ResendJobs(), **({"auth": auth} if auth else {}))
    app = build_app(state)
    if auth is None:
        async def nobody() -> None:
            return None
        app.dependency_overrides[require_caseworker] = nobody
    return app


@pytest.fixture
async def api(template_db: Path, tmp_path: Path) -> AsyncIterator[Api]:
    shutil.copy(template_db, tmp_path / "hub.db")
    journal = Journal(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"), flush_ms=5)
    await journal.start()
    core, publisher, audit, jobs = FakeCore(*PEOPLE), FakePublisher(), FakeAudit(), ResendJobs()
    app = resend_app(_deps(core=core, journal=journal, publisher=publisher), audit, jobs=jobs)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub.test") as http:
        yield Api(http, core, publisher, journal, audit, jobs)
    await jobs.aclose()
    await journal.stop()
    await journal.engine.dispose()


def body(p: EmployeeEnrollment, action: str = "enroll", **over: Any) -> dict[str, Any]:
    return {"id_number": p.id_number, "unit_credit_code": p.unit_credit_code,
            "action": action, "reason": "税务未收到参保信息"} | over


async def test_resend_publishes_and_journals_a_received_transaction(api: Api) -> None:
    p = PEOPLE[0]
    r = await api.http.post("/admin/resend/employee", json=body(p))
    assert r.status_code == 202, r.text
    out = r.json()
    (msg,) = api.publisher.sent
    assert (out["correlation_id"], out["serial"], out["type"]) == (
        msg.correlation_id, partner_serial(msg), ENROLL)
    assert msg.causation_id == out["resend_id"] and msg.source == "resend"
    txn = await api.journal.transaction(msg.correlation_id)
    assert txn is not None
    assert (txn["status"], txn["source"], txn["business_key"]) == (
        "received", "resend", p.business_key)
    (entry,) = await api.journal.log_for(msg.correlation_id)
    assert entry["hop"] == "admin.resend" and "anonymous" in entry["detail"]
    assert p.id_number not in entry["detail"]  # masked at rest
    (row,) = api.audit.rows
    assert row[:3] == ("anonymous", "caseworker", "resend.employee.enroll")
    assert p.id_number not in row[3] and row[3].startswith(p.unit_credit_code)
    assert row[4]["correlation_id"] == msg.correlation_id and row[5] == "accepted"


async def test_stop_resend_publishes_the_stop(api: Api) -> None:
    p = PEOPLE[1]
    r = await api.http.post("/admin/resend/employee",
                            json=body(p, "stop", stop_date="2025-06-30", stop_reason="02"))
    assert r.status_code == 202, r.text
    (msg,) = api.publisher.sent
    assert msg.type == STOP and msg.payload["stop_date"] == "2025-06-30"
    assert api.audit.rows[0][4]["stop_date"] == "2025-06-30"


async def test_not_in_core_is_422_with_the_reason_and_nothing_sent(api: Api) -> None:
    stranger = person(99)
    r = await api.http.post("/admin/resend/employee", json=body(stranger))
    assert r.status_code == 422
    assert r.json()["code"] == "NOT_IN_CORE"
    assert not api.publisher.sent
    assert api.audit.rows[0][5] == "rejected"


@pytest.mark.parametrize(("error", "status"), [
    (PartnerTimeout("slow", partner="core"), 503),
    (ClientError("HTTP 401", partner="core"), 502),
])
async def test_core_failures_are_gateway_errors(api: Api, error: Exception,
                                                status: int) -> None:
    api.core.error = error
    r = await api.http.post("/admin/resend/employee", json=body(PEOPLE[0]))
    assert r.status_code == status
    assert not api.publisher.sent


@pytest.mark.parametrize("over", [
    {"action": "stop"},
    {"stop_date": "2025-01-01"},
    {"reason": ""},
    {"id_number": "320102199005061230"},
    {"surprise": 1},
])
async def test_bad_requests_are_422_before_core_is_asked(api: Api, over: dict[str, Any]) -> None:
    r = await api.http.post("/admin/resend/employee", json=body(PEOPLE[0]) | over)
    assert r.status_code == 422, r.text
    assert not api.core.queries


class RecordingAuth(Authenticator):
    """Knows one caseworker (token ``ok``) and records the roles each request needed."""

    def __init__(self) -> None:
        super().__init__({hash_token("ok"): Principal("wang.wu", "caseworker")}, None)
        self.asked: list[tuple[str, ...]] = []

    async def check(self, request: Request, creds: HTTPAuthorizationCredentials | None,
                    roles: Collection[Role]) -> Principal:
        self.asked.append(tuple(roles))
        return await super().check(request, creds, roles)


async def test_require_guards_every_endpoint_and_names_the_actor(template_db: Path,
                                                                 tmp_path: Path) -> None:
    shutil.copy(template_db, tmp_path / "hub.db")
    journal = Journal(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"))
    audit, publisher, auth = FakeAudit(), FakePublisher(), RecordingAuth()
    app = resend_app(_deps(core=FakeCore(*PEOPLE), journal=journal, publisher=publisher),
                     audit, auth=auth)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://hub.test") as http:
            for method, url, payload in [
                    ("POST", "/admin/resend/employee", body(PEOPLE[0])),
                    ("POST", "/admin/resend/employee/bulk",
                     {"filter": {"status": "dead"}, "action": "enroll", "reason": "补发"}),
                    ("GET", "/admin/resend/jobs/nope", None)]:
                r = await http.request(method, url, json=payload)
                assert r.status_code == 401, (url, r.text)
            r = await http.post("/admin/resend/employee", json=body(PEOPLE[0]),
                                headers={"authorization": "Bearer ok"})
            assert r.status_code == 202, r.text
    finally:
        await journal.engine.dispose()
    assert auth.asked == [("caseworker",)] * 4  # every endpoint asks for a caseworker
    assert audit.rows[0][:2] == ("wang.wu", "caseworker") and len(publisher.sent) == 1


# ------------------------------------------------------------------ bulk

T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


async def seed(journal: Journal, *rows: tuple[str, str, EmployeeEnrollment | str, str,
                                              datetime]) -> None:
    """(correlation_id, type, person or business key, status, created_at) rows."""
    await journal.write(*(TxnUpdate(cid, type_, p if isinstance(p, str) else p.business_key,
                                    "core", status, at=at) for cid, type_, p, status, at in rows))


async def test_selection_takes_each_persons_latest_transaction(api: Api) -> None:
    a, b, c, d = PEOPLE
    await seed(api.journal,
               ("c1", ENROLL, a, "dead", T0),
               ("c2", ENROLL, b, "dead", T0 + timedelta(minutes=1)),
               ("c3", ENROLL, b, "delivered", T0 + timedelta(minutes=2)),  # b was fixed since
               ("c4", STOP, c, "dead", T0 + timedelta(minutes=3)),
               ("c5", ENROLL, d, "rejected", T0 + timedelta(minutes=4)),
               ("c6", "core.event", "-", "dead", T0 + timedelta(minutes=5)))
    got = await select_resend_targets(api.journal.engine, ResendFilter(status="dead"), 100)
    assert [t.correlation_id for t in got] == ["c1", "c4"]
    only_enroll = ResendFilter(status="dead", type=ENROLL)
    assert [t.correlation_id for t in await select_resend_targets(
        api.journal.engine, only_enroll, 100)] == ["c1"]
    beijing = timezone(timedelta(hours=8))
    since = ResendFilter(status="dead", since=(T0 + timedelta(minutes=2)).astimezone(beijing))
    assert [t.correlation_id for t in await select_resend_targets(
        api.journal.engine, since, 100)] == ["c4"]
    assert len(await select_resend_targets(api.journal.engine, ResendFilter(status="dead"),
                                           1)) == 1


async def _wait_job(http: httpx.AsyncClient, job_id: str, timeout: float = 10) -> dict[str, Any]:
    for _ in range(int(timeout / 0.02)):
        view: dict[str, Any] = (await http.get(f"/admin/resend/jobs/{job_id}")).json()
        if view["state"] != "running":
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} still running: {view}")


async def test_bulk_resend_runs_to_completion_and_counts_failures(api: Api) -> None:
    a, b, c, _ = PEOPLE
    gone = person(50)
    await seed(api.journal,
               ("c1", ENROLL, a, "dead", T0),
               ("c2", ENROLL, gone, "dead", T0 + timedelta(seconds=1)),
               ("c3", STOP, c, "dead", T0 + timedelta(seconds=2)),
               ("c4", ENROLL, "garbage-key", "dead", T0 + timedelta(seconds=3)),
               ("c5", ENROLL, b, "rejected", T0 + timedelta(seconds=4)))
    r = await api.http.post("/admin/resend/employee/bulk", json={
        "filter": {"status": "dead"}, "action": "enroll", "reason": "批量补发", "rate_per_s": 50})
    assert r.status_code == 202, r.text
    assert r.json()["total"] == 4
    view = await _wait_job(api.http, r.json()["job_id"])
    assert (view["state"], view["total"], view["done"], view["failed"], view["pending"]) == (
        "finished", 4, 2, 2, 0)
    assert sorted(f["code"] for f in view["failures"]) == ["NOT_IN_CORE", "VALIDATION"]
    assert all(gone.id_number not in str(f) for f in view["failures"])
    assert {m.payload["id_number"] for m in api.publisher.sent} == {a.id_number, c.id_number}
    assert all(m.type == ENROLL and m.source == "resend" for m in api.publisher.sent)
    assert view["correlation_ids"] == [m.correlation_id for m in api.publisher.sent]
    actions = [(row[2], row[5]) for row in api.audit.rows]
    assert actions[0] == ("resend.employee.bulk", "started")
    assert actions[-1] == ("resend.employee.bulk", "finished")
    assert actions.count(("resend.employee.enroll", "accepted")) == 2
    # the resent persons now have a newer transaction: the same request picks only the rest
    again = await api.http.post("/admin/resend/employee/bulk", json={
        "filter": {"status": "dead"}, "action": "enroll", "reason": "再次补发", "rate_per_s": 50})
    assert again.json()["total"] == 2
    await _wait_job(api.http, again.json()["job_id"])


async def test_bulk_is_paced(api: Api) -> None:
    await seed(api.journal, *((f"c{i}", ENROLL, p, "dead", T0 + timedelta(seconds=i))
                              for i, p in enumerate(PEOPLE)))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await api.http.post("/admin/resend/employee/bulk", json={
        "filter": {"status": "dead"}, "action": "enroll", "reason": "补发", "rate_per_s": 20})
    view = await _wait_job(api.http, r.json()["job_id"])
    assert view["done"] == 4
    assert loop.time() - t0 >= 3 / 20 - 0.01  # four sends at 20/s span three intervals


async def test_bulk_stop_needs_a_date_and_unknown_jobs_are_404(api: Api) -> None:
    r = await api.http.post("/admin/resend/employee/bulk", json={
        "filter": {"status": "dead"}, "action": "stop", "reason": "补发"})
    assert r.status_code == 422 and "stop_date" in r.text
    r = await api.http.post("/admin/resend/employee/bulk", json={
        "filter": {"status": "exploded"}, "action": "enroll", "reason": "补发"})
    assert r.status_code == 422
    assert (await api.http.get("/admin/resend/jobs/nope")).status_code == 404


async def test_broker_failure_in_a_bulk_item_is_counted(api: Api) -> None:
    await seed(api.journal, ("c1", ENROLL, PEOPLE[0], "dead", T0))
    api.publisher.error = ConnectionError("broker down")
    r = await api.http.post("/admin/resend/employee/bulk", json={
        "filter": {"status": "dead"}, "action": "enroll", "reason": "补发"})
    view = await _wait_job(api.http, r.json()["job_id"])
    assert (view["state"], view["done"], view["failed"]) == ("finished", 0, 1)
    assert view["failures"][0]["code"] == "ConnectionError"
    assert api.audit.rows[1][5] == "failed"
