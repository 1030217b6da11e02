"""The tax simulator over real sockets: SOAP calls in, FeedbackNotify callbacks out.

Two uvicorn servers on ephemeral 127.0.0.1 ports in the test's event loop: the
simulator and a tiny callback receiver standing in for the hub. Needs no
RabbitMQ or Redis, only loopback sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from adapters.tax import soap
from adapters.tax.client import LeanTaxClient
from contracts.employee import EmployeeEnrollment, TaxFeedback
from contracts.errors import BusinessRejected, PartnerTimeout
from contracts.ids import id_check_char
from simulators.simkit import Fault, SimState
from simulators.tax import CallbackRetry, TaxSimulator, create_app
from tests.support.servers import serve_app
from tests.support.zeep_tax import ZeepTaxClient

pytestmark = pytest.mark.integration

FIXTURES = soap.TAX_XSD.parents[1] / "fixtures" / "tax" / "employee_enroll"


def load(name: str = "001_ok") -> EmployeeEnrollment:
    return EmployeeEnrollment.model_validate_json((FIXTURES / f"{name}.input.json").read_text())


@dataclass
class Receiver:
    """Stands in for the hub's FeedbackNotify endpoint; can refuse the first N calls."""

    refuse_first: int = 0
    calls: int = 0
    received: list[TaxFeedback] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/tax/callback")
        async def notify(request: Request) -> Response:
            self.calls += 1
            if self.calls <= self.refuse_first:
                return Response(soap.build_feedback_reply(False, "broker down", "HUB503"),
                                status_code=503, media_type=soap.SOAP_CONTENT_TYPE)
            fb = soap.parse_feedback_request(await request.body())
            async with self.arrived:
                self.received.append(fb)
                self.arrived.notify_all()
            return Response(soap.build_feedback_reply(True, "已接收"),
                            media_type=soap.SOAP_CONTENT_TYPE)

        return app

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[TaxFeedback]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.received) >= n),
                                   timeout)
        return self.received


@dataclass
class Rig:
    sim_url: str
    state: SimState
    sim: TaxSimulator
    receiver: Receiver
    client: LeanTaxClient


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def rig(receiver: Receiver) -> AsyncIterator[Rig]:
    state = SimState()
    async with serve_app(receiver.app()) as cb_url:
        app = create_app(state, callback_url=f"{cb_url}/tax/callback", feedback_delay_s=0.05,
                         reject_suffixes={"4444"},
                         callback_retry=CallbackRetry(attempts=5, first_delay_s=0.05))
        async with serve_app(app) as sim_url:
            client = LeanTaxClient(f"{sim_url}/tax/ws", timeout=2.0)
            try:
                yield Rig(sim_url, state, app.state.tax, receiver, client)
            finally:
                await client.aclose()


async def effects(rig: Rig) -> dict[str, Any]:
    """Read the side effects the way an operator would: over /_sim."""
    async with httpx.AsyncClient(base_url=rig.sim_url) as http:
        return dict((await http.get("/_sim/effects")).json())


async def test_success_then_feedback_accepted(rig: Rig) -> None:
    req = load()
    ack = await rig.client.enroll_employee(req, serial="SER-OK-1")
    [fb] = await rig.receiver.wait_for(1)
    assert fb.status == "accepted"
    assert (fb.accept_no, fb.biz_msg_id, fb.operation, fb.id_number) == (
        ack.accept_no, "SER-OK-1", "EmployeeEnroll", req.id_number)
    assert (await effects(rig))["effects"] == 1


async def test_reject_rule_gives_rejected_feedback(rig: Rig) -> None:
    first17 = "32010219900514444"  # 4 digits before the check char: 4444 (female, 1990-05-14)
    req = EmployeeEnrollment.model_validate({
        **load().model_dump(), "id_number": first17 + id_check_char(first17),
        "gender": "2", "birth_date": date(1990, 5, 14)})
    ack = await rig.client.enroll_employee(req, serial="SER-REJ-1")
    [fb] = await rig.receiver.wait_for(1)
    assert fb.accept_no == ack.accept_no
    assert (fb.status, fb.reason_code) == ("rejected", "TX201")
    assert fb.reason_text == "该人员在其他单位存在有效参保记录"


async def test_duplicate_fault_sends_two_callbacks(rig: Rig) -> None:
    rig.state.faults.append(Fault(kind="duplicate", count=1))
    await rig.client.enroll_employee(load(), serial="SER-DUP-1")
    received = await rig.receiver.wait_for(2)
    await rig.sim.drain()
    assert len(received) == 2 and received[0] == received[1]
    assert (await effects(rig))["effects"] == 1


async def test_same_serial_gives_one_effect(rig: Rig) -> None:
    acks = [await rig.client.enroll_employee(load(), serial="SER-SAME") for _ in range(3)]
    assert len({a.accept_no for a in acks}) == 1
    await rig.receiver.wait_for(1)
    await rig.sim.drain()
    summary = await effects(rig)
    assert (summary["effects"], summary["replays"]) == (1, 2)
    assert len(rig.receiver.received) == 1


async def test_timeout_then_resend_is_a_replay(rig: Rig) -> None:
    rig.state.faults.append(Fault(kind="timeout", delay_s=1.5, count=1))
    impatient = LeanTaxClient(f"{rig.sim_url}/tax/ws", timeout=0.3)
    try:
        with pytest.raises(PartnerTimeout):
            await impatient.enroll_employee(load(), serial="SER-TO-1")
    finally:
        await impatient.aclose()
    ack = await rig.client.enroll_employee(load(), serial="SER-TO-1")
    [fb] = await rig.receiver.wait_for(1)  # tax processed the first call all along
    assert fb.accept_no == ack.accept_no
    summary = await effects(rig)
    assert (summary["effects"], summary["replays"]) == (1, 1)


async def test_callbacks_are_retried_until_acknowledged(rig: Rig) -> None:
    rig.receiver.refuse_first = 2
    await rig.client.enroll_employee(load(), serial="SER-RETRY-1")
    [fb] = await rig.receiver.wait_for(1)
    await rig.sim.drain()
    assert fb.biz_msg_id == "SER-RETRY-1"
    assert rig.receiver.calls == 3
    assert (len(rig.sim.delivered), rig.sim.callback_calls) == (1, 3)


async def test_zeep_client_over_sockets(rig: Rig) -> None:
    z = ZeepTaxClient(soap.TAX_WSDL, f"{rig.sim_url}/tax/ws", 2.0)
    try:
        ack = await z.enroll_employee(load("004_wage"), serial="SER-ZEEP-1")
    finally:
        await z.aclose()
    [fb] = await rig.receiver.wait_for(1)
    assert fb.accept_no == ack.accept_no


async def test_faults_switch_over_http(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.sim_url) as http:
        r = await http.post("/_sim/faults", json={"kind": "reject", "code": "TX900",
                                                  "text": "停机维护", "count": 1})
        assert r.status_code == 200
        health = (await http.get("/tax/ws/health")).json()
    assert health["status"] == "ok"
    with pytest.raises(BusinessRejected, match="TX900"):
        await rig.client.enroll_employee(load(), serial="SER-HTTP-1")
