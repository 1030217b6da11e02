"""CoreClient against the core simulator in memory (httpx.ASGITransport), and the
boundary mapping of every failure to ``contracts.errors`` (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from adapters.core.client import HUB_PATH, CoreClient
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerTimeout,
    PartnerUnavailable,
    PermanentError,
    TransientError,
    ValidationFailed,
)
from simulators.core import CoreStore, create_app
from simulators.simkit import Fault, SimState

BASE = "http://core.test"


@pytest.fixture
def state() -> SimState:
    return SimState()


@pytest.fixture
def store() -> CoreStore:
    return CoreStore.seed(2, 4, rng_seed=5)


@pytest.fixture
async def client(state: SimState, store: CoreStore) -> AsyncIterator[CoreClient]:
    app = create_app(state, store=store)
    async with CoreClient(BASE, timeout=5.0, transport=httpx.ASGITransport(app=app)) as c:
        yield c


@pytest.fixture
def person(store: CoreStore) -> EmployeeEnrollment:
    return next(iter(store.persons.values()))


def _update(person: EmployeeEnrollment, status: str = "synced") -> SyncStatusUpdate:
    return SyncStatusUpdate.model_validate({
        "correlation_id": "corr-1", "biz_type": "tax.employee.enroll",
        "business_key": person.business_key, "id_number": person.id_number, "status": status,
        "accept_no": "A0001"})


async def test_update_sync_status_records_one_effect(client: CoreClient, state: SimState,
                                                     store: CoreStore,
                                                     person: EmployeeEnrollment) -> None:
    await client.update_sync_status(_update(person), serial="s-1")

    assert state.log.effects == {f"H9201:{person.business_key}:synced": 1}
    assert state.log.order == {person.id_number: ["synced"]}
    saved = store.sync_status[person.business_key]
    assert (saved["status"], saved["serial"], saved["accept_no"]) == ("synced", "s-1", "A0001")


async def test_same_serial_is_a_replay_not_a_second_effect(
        client: CoreClient, state: SimState, person: EmployeeEnrollment) -> None:
    await client.update_sync_status(_update(person), serial="s-1")
    await client.update_sync_status(_update(person), serial="s-1")
    await client.update_sync_status(_update(person, "rejected"), serial="s-2")

    assert state.log.replays == 1
    assert state.log.effects == {f"H9201:{person.business_key}:synced": 1,
                                 f"H9201:{person.business_key}:rejected": 1}
    assert state.log.order[person.id_number] == ["synced", "rejected"]


async def test_5xx_is_transient_and_makes_no_effect(client: CoreClient, state: SimState,
                                                    person: EmployeeEnrollment) -> None:
    state.faults.append(Fault(kind="http_5xx", count=1))

    with pytest.raises(PartnerUnavailable) as exc:
        await client.update_sync_status(_update(person), serial="s-1")
    assert isinstance(exc.value, TransientError) and exc.value.partner == "core"
    assert not state.log.effects

    await client.update_sync_status(_update(person), serial="s-1")  # the retry succeeds
    assert sum(state.log.effects.values()) == 1 and state.log.replays == 0


async def test_reject_is_a_business_rejection_with_core_code(
        client: CoreClient, state: SimState, person: EmployeeEnrollment) -> None:
    state.faults.append(Fault(kind="reject", code="E201", text="记录已锁定",
                              operation="H9201"))

    with pytest.raises(BusinessRejected) as exc:
        await client.update_sync_status(_update(person), serial="s-1")
    assert (exc.value.reason_code, exc.value.reason_text) == ("E201", "记录已锁定")
    assert isinstance(exc.value, PermanentError)
    assert not state.log.effects


async def test_get_employee_found(client: CoreClient, person: EmployeeEnrollment) -> None:
    assert await client.get_employee(person.id_number, person.unit_credit_code) == person


async def test_get_employee_not_found_is_none(client: CoreClient,
                                              person: EmployeeEnrollment) -> None:
    assert await client.get_employee("110101199003077777", person.unit_credit_code) is None


async def test_fault_scoped_to_another_operation_does_not_apply(
        client: CoreClient, state: SimState, person: EmployeeEnrollment) -> None:
    state.faults.append(Fault(kind="http_5xx", operation="H9201"))
    assert await client.get_employee(person.id_number, person.unit_credit_code) == person


async def test_invalid_input_is_rejected_by_core(client: CoreClient) -> None:
    with pytest.raises(BusinessRejected) as exc:
        await client.get_employee("", "")
    assert exc.value.reason_code == "INVALID_INPUT"


async def test_empty_serial_refused_before_sending(client: CoreClient, state: SimState,
                                                   person: EmployeeEnrollment) -> None:
    with pytest.raises(ValidationFailed):
        await client.update_sync_status(_update(person), serial="")
    assert state.log.calls == 0


# --- boundary mapping, one failure at a time --------------------------------------------


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> CoreClient:
    return CoreClient(BASE, timeout=1.0, transport=httpx.MockTransport(handler))


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc
    return handler


def _answer(status: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content)
    return handler


@pytest.mark.parametrize(("handler", "expected"), [
    (_raise(httpx.ReadTimeout("slow")), PartnerTimeout),
    (_raise(httpx.ConnectTimeout("slow")), PartnerTimeout),
    (_raise(httpx.ConnectError("refused")), PartnerUnavailable),
    (_raise(httpx.RemoteProtocolError("reset")), PartnerUnavailable),
    (_answer(503, {"detail": "down"}), PartnerUnavailable),
    (_answer(500, b"oops"), PartnerUnavailable),
    (_answer(429, {"detail": "slow down"}), PartnerUnavailable),
    (_answer(400, {"detail": "bad"}), ClientError),
    (_answer(404, {"detail": "no"}), ClientError),
    (_answer(200, b"<html>gateway</html>"), PartnerUnavailable),
    (_answer(200, {"infcode": "maybe"}), PartnerUnavailable),
    (_answer(200, {"output": {}}), PartnerUnavailable),
    (_answer(200, {"infcode": "-1", "err_msg": "拒绝"}), BusinessRejected),
])
async def test_errors_mapped_at_the_boundary(handler: Callable[[httpx.Request], httpx.Response],
                                             expected: type[Exception]) -> None:
    async with _mock(handler) as c:
        with pytest.raises(expected) as exc:
            await c.update_sync_status(SyncStatusUpdate(
                correlation_id="c", biz_type="t", business_key="k", status="synced"),
                serial="s")
    assert exc.value.partner == "core"  # type: ignore[attr-defined]


async def test_rejection_without_code_uses_core() -> None:
    async with _mock(_answer(200, {"infcode": -1, "err_msg": "拒绝"})) as c:
        with pytest.raises(BusinessRejected) as exc:
            await c.get_employee("x", "y")
    assert (exc.value.reason_code, exc.value.reason_text) == ("CORE", "拒绝")


async def test_request_is_a_national_envelope() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == HUB_PATH
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"infcode": 0, "output": {}})

    async with _mock(handler) as c:
        await c.update_sync_status(SyncStatusUpdate(
            correlation_id="c", biz_type="t", business_key="k", status="failed"), serial="s9")
        await c.update_sync_status(SyncStatusUpdate(
            correlation_id="c", biz_type="t", business_key="k", status="failed"), serial="s9")
    first, second = seen
    assert first["infno"] == "H9201" and first["input"]["serial"] == "s9"
    assert first["input"]["data"]["sync_stas"] == "3"
    assert first["msgid"].startswith("NJYBHUB00001") and len(first["msgid"]) == 30
    assert first["msgid"] != second["msgid"]  # a retry is a new message, same serial


async def test_answer_without_data_is_a_misbehaving_partner() -> None:
    async with _mock(_answer(200, {"infcode": 0, "output": None})) as c:
        with pytest.raises(PartnerUnavailable):
            await c.get_employee("x", "y")


def test_bad_sender_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        CoreClient(BASE, timeout=1.0, sender="short")
