"""Core over real sockets: the simulator on uvicorn, CoreClient through the network stack,
and core's event emission into a small receiver that stands in for the hub."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.core.client import CoreClient
from adapters.core.translate import event_to_enrollment, parse_national_request
from adapters.signing import MemoryNonceStore, verify_signed
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate
from contracts.errors import PartnerTimeout, PartnerUnavailable, ValidationFailed
from contracts.national import NationalResponse
from contracts.signing import PARTNER_HEADERS, SignatureRefused, request_target
from simulators.core import CoreStore, create_app, emit_enrollments
from simulators.simkit import SimState
from tests.support.servers import serve_app

pytestmark = pytest.mark.integration


@pytest.fixture
def state() -> SimState:
    return SimState()


@pytest.fixture
def store() -> CoreStore:
    return CoreStore.seed(3, 9, rng_seed=42)


@pytest.fixture
async def core_url(state: SimState, store: CoreStore) -> AsyncIterator[str]:
    async with serve_app(create_app(state, store=store)) as url:
        yield url


def _update(person: EmployeeEnrollment) -> SyncStatusUpdate:
    return SyncStatusUpdate(correlation_id="corr-9", biz_type="tax.employee.enroll",
                            business_key=person.business_key, id_number=person.id_number,
                            status="synced", accept_no="A9")


async def test_client_over_real_sockets(core_url: str, store: CoreStore) -> None:
    person = list(store.persons.values())[4]
    async with CoreClient(core_url, timeout=5.0) as client, httpx.AsyncClient() as http:
        assert await client.get_employee(person.id_number, person.unit_credit_code) == person
        await client.update_sync_status(_update(person), serial="serial-1")
        await client.update_sync_status(_update(person), serial="serial-1")

        one = (await http.get(f"{core_url}/core/sync-status/{person.business_key}")).json()
        effects = (await http.get(f"{core_url}/_sim/effects")).json()
        health = (await http.get(f"{core_url}/core/health")).json()
        missing = await http.get(f"{core_url}/core/sync-status/nope")

    assert (one["status"], one["serial"]) == ("synced", "serial-1")
    assert (effects["effects"], effects["replays"], effects["duplicates"]) == (1, 1, {})
    assert health == {"status": "ok", "units": 3, "persons": 9, "sync_status": 1}
    assert missing.status_code == 404


async def test_timeout_leaves_the_effect_and_the_retry_is_a_replay(
        core_url: str, state: SimState, store: CoreStore) -> None:
    """A timeout does not mean nothing happened: core acted, then was slow to answer."""
    person = next(iter(store.persons.values()))
    async with httpx.AsyncClient() as http:
        r = await http.put(f"{core_url}/_sim/faults",
                           json=[{"kind": "timeout", "delay_s": 1.0, "count": 1}])
        assert r.status_code == 200

    async with CoreClient(core_url, timeout=0.3) as client:
        with pytest.raises(PartnerTimeout):
            await client.update_sync_status(_update(person), serial="serial-t")
        assert sum(state.log.effects.values()) == 1

        await client.update_sync_status(_update(person), serial="serial-t")
    assert sum(state.log.effects.values()) == 1
    assert state.log.replays == 1


async def test_faults_switched_over_http(core_url: str, store: CoreStore,
                                         state: SimState) -> None:
    person = next(iter(store.persons.values()))
    async with httpx.AsyncClient() as http:
        await http.post(f"{core_url}/_sim/faults", json={"kind": "http_5xx", "count": 1})
    async with CoreClient(core_url, timeout=5.0) as client:
        with pytest.raises(PartnerUnavailable):
            await client.update_sync_status(_update(person), serial="s-5")
        await client.update_sync_status(_update(person), serial="s-5")
    assert sum(state.log.effects.values()) == 1


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    async with CoreClient(f"http://127.0.0.1:{port}", timeout=2.0) as client:
        with pytest.raises(PartnerUnavailable):
            await client.get_employee("x", "y")


CORE_SECRET = "core-secret-of-the-receiver"


def _receiver(events: list[dict[str, Any]], in_flight: list[int]) -> FastAPI:
    """Stands in for the hub's ``/partners/core/events``: checks core's signature, validates,
    records, answers."""
    app = FastAPI()
    current = 0
    nonces = MemoryNonceStore()

    @app.post("/partners/core/events")
    async def receive(request: Request) -> JSONResponse:
        nonlocal current
        current += 1
        in_flight.append(current)
        try:
            await asyncio.sleep(0.01)
            body = await request.body()
            try:
                await verify_signed("core", CORE_SECRET, method=request.method,
                                    target=request_target(request.scope),
                                    headers=request.headers, body=body, nonces=nonces,
                                    names=PARTNER_HEADERS)
            except SignatureRefused as exc:
                return JSONResponse({"detail": exc.reason}, status_code=401)
            req = parse_national_request(body)
            events.append(req.to_wire())
            try:
                event_to_enrollment(req.input)
            except ValidationFailed as exc:
                return JSONResponse(NationalResponse.failure(exc.reason, code="VALIDATION")
                                    .model_dump(mode="json"), status_code=400)
            return JSONResponse(NationalResponse.success(None).model_dump(mode="json"))
        finally:
            current -= 1

    return app


async def test_emit_enrollments_to_a_receiver(store: CoreStore) -> None:
    events: list[dict[str, Any]] = []
    in_flight: list[int] = []
    async with serve_app(_receiver(events, in_flight)) as hub_url, httpx.AsyncClient() as http:
        msgids = await emit_enrollments(hub_url, store, 30, client=http, concurrency=5,
                                        invalid_every=3, secret=CORE_SECRET)
        again = await emit_enrollments(hub_url, store, 3, client=http, secret=CORE_SECRET)

    assert len(msgids) == 30 and len(set(msgids) | set(again)) == 33
    assert sorted(e["msgid"] for e in events) == sorted(msgids + again)
    assert 1 < max(in_flight) <= 5
    by_msgid = {e["msgid"]: e for e in events}
    for i, msgid in enumerate(msgids):
        event = by_msgid[msgid]
        assert event["infno"] == "H2101"
        if (i + 1) % 3 == 0:
            with pytest.raises(ValidationFailed) as exc:
                event_to_enrollment(event["input"])
            assert exc.value.field == "certno"
        else:
            event_to_enrollment(event["input"])
    # 9 persons (seq 1), 33 events in turn: 6 persons bumped 4 times, 3 persons 3 times.
    assert sorted(p.entity_seq for p in store.persons.values()) == [4] * 3 + [5] * 6


async def test_emit_enrollments_raises_when_the_hub_route_is_missing(store: CoreStore) -> None:
    async with serve_app(FastAPI()) as url, httpx.AsyncClient() as http:
        with pytest.raises(httpx.HTTPStatusError):
            await emit_enrollments(url, store, 3, client=http, secret=CORE_SECRET)
