"""Both TaxPort clients against the simulator app (in memory) and hand-made HTTP answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from adapters.tax import soap
from adapters.tax.client import LeanTaxClient
from adapters.tax.port import TaxPort
from contracts.clock import BEIJING
from contracts.employee import EmployeeEnrollment, EmployeeStop
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerTimeout,
    PartnerUnavailable,
)
from simulators.simkit import Fault, SimState
from simulators.tax import create_app
from tests.support.zeep_tax import ZeepTaxClient

FIXTURES = soap.TAX_XSD.parents[1] / "fixtures" / "tax" / "employee_enroll"
ENDPOINT = "http://tax.test/tax/ws"
SENT_AT = datetime(2025, 1, 15, 9, 30, tzinfo=BEIJING)

ClientFactory = Callable[[httpx.AsyncBaseTransport], Any]

FACTORIES: dict[str, ClientFactory] = {
    "lean": lambda t: LeanTaxClient(ENDPOINT, timeout=2.0, transport=t),
    "zeep": lambda t: ZeepTaxClient(soap.TAX_WSDL, ENDPOINT, 2.0, transport=t),
}


def load(name: str = "001_ok") -> EmployeeEnrollment:
    return EmployeeEnrollment.model_validate_json((FIXTURES / f"{name}.input.json").read_text())


@pytest.fixture
def state() -> SimState:
    return SimState()


@pytest.fixture(params=sorted(FACTORIES))
async def client(request: pytest.FixtureRequest, state: SimState) -> AsyncIterator[TaxPort]:
    app = create_app(state, callback_url=None)
    c = FACTORIES[request.param](httpx.ASGITransport(app=app))
    yield c
    await c.aclose()


async def call(c: TaxPort, req: EmployeeEnrollment | None = None, serial: str = "SER-1") -> Any:
    return await c.enroll_employee(req or load(), serial=serial)


# ------------------------------------------------------------------ against the simulator

async def test_success_records_one_effect(client: TaxPort, state: SimState) -> None:
    ack = await call(client)
    assert ack.accept_no.startswith("SL") and ack.ret_code == "000000"
    req = load()
    assert state.log.effects == {f"EmployeeEnroll:{req.unit_credit_code}:{req.id_number}": 1}
    assert state.log.order == {req.id_number: ["SER-1"]}


async def test_same_serial_is_a_replay(client: TaxPort, state: SimState) -> None:
    first = await call(client)
    again = await call(client)
    assert again == first
    assert state.log.replays == 1 and sum(state.log.effects.values()) == 1


async def test_http_5xx_is_transient_and_has_no_effect(client: TaxPort, state: SimState) -> None:
    state.faults.append(Fault(kind="http_5xx", count=1))
    with pytest.raises(PartnerUnavailable, match="503"):
        await call(client)
    assert not state.log.effects
    assert (await call(client)).accept_no  # the retry succeeds


async def test_soap_server_fault_is_transient(client: TaxPort, state: SimState) -> None:
    state.faults.append(Fault(kind="soap_fault", count=1))
    with pytest.raises(PartnerUnavailable, match="Server"):
        await call(client)
    assert not state.log.effects


async def test_http_4xx_is_permanent(client: TaxPort, state: SimState) -> None:
    state.faults.append(Fault(kind="http_4xx", count=1))
    with pytest.raises(ClientError, match="400"):
        await call(client)


async def test_soap_client_fault_is_permanent(client: TaxPort, state: SimState) -> None:
    state.faults.append(Fault(kind="bad_signature", count=1))
    with pytest.raises(ClientError, match="Client"):
        await call(client)


async def test_reject_fault_is_business_rejection(client: TaxPort, state: SimState) -> None:
    state.faults.append(Fault(kind="reject", code="TX999", text="暂停受理", count=1))
    with pytest.raises(BusinessRejected) as e:
        await call(client)
    assert (e.value.reason_code, e.value.reason_text) == ("TX999", "暂停受理")
    assert not state.log.effects


async def test_unknown_division_is_tx101(client: TaxPort, state: SimState) -> None:
    outside = load().model_copy(update={"admdvs": "310101"})  # Shanghai; bypasses validation
    with pytest.raises(BusinessRejected) as e:
        await call(client, outside)
    assert e.value.reason_code == "TX101"
    assert not state.log.effects


async def test_fault_matching_narrows_to_one_person(client: TaxPort, state: SimState) -> None:
    other = load("003_female")
    state.faults.append(Fault(kind="http_5xx", match=other.id_number))
    assert (await call(client)).accept_no
    with pytest.raises(PartnerUnavailable):
        await call(client, other, serial="SER-2")


# ------------------------------------------------------------------ hand-made HTTP answers

def mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def raising(exc: type[httpx.HTTPError]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)  # type: ignore[call-arg]
    return mock(handler)


def answer(status: int, body: bytes = b"", ctype: str = soap.SOAP_CONTENT_TYPE
           ) -> httpx.MockTransport:
    return mock(lambda _: httpx.Response(status, content=body, headers={"Content-Type": ctype}))


@pytest.mark.parametrize("flavour", sorted(FACTORIES))
@pytest.mark.parametrize(("transport", "error"), [
    (raising(httpx.ReadTimeout), PartnerTimeout),
    (raising(httpx.ConnectTimeout), PartnerTimeout),
    (raising(httpx.ConnectError), PartnerUnavailable),
    (raising(httpx.RemoteProtocolError), PartnerUnavailable),
    (answer(502, b"Bad Gateway", "text/html"), PartnerUnavailable),
    (answer(500, b"<html>oops</html>", "text/html"), PartnerUnavailable),
    (answer(429, b"slow down", "text/plain"), PartnerUnavailable),
    (answer(404, b"not here", "text/plain"), ClientError),
    (answer(500, soap.build_fault("Client", "bad")), ClientError),
    (answer(500, soap.build_fault("Server", "busy")), PartnerUnavailable),
    (answer(200, soap.build_ack("F", "TX101", "no")), BusinessRejected),
    (answer(200, b"<html>maintenance</html>", "text/html"), PartnerUnavailable),
], ids=["read-timeout", "connect-timeout", "connect-error", "protocol-error", "502", "500-html",
        "429", "404", "client-fault", "server-fault", "ret-F", "200-garbage"])
async def test_error_mapping(flavour: str, transport: httpx.MockTransport,
                             error: type[Exception]) -> None:
    c = FACTORIES[flavour](transport)
    try:
        with pytest.raises(error) as e:
            await call(c)
        assert getattr(e.value, "partner", None) == "tax"
    finally:
        await c.aclose()


async def test_lean_caps_the_response_size() -> None:
    big = soap.build_ack("S", "000000", "x" * 5000, "SL1")
    c = LeanTaxClient(ENDPOINT, timeout=1.0, transport=answer(200, big), max_response_bytes=1000)
    try:
        with pytest.raises(PartnerUnavailable, match="limit"):
            await call(c)
    finally:
        await c.aclose()


async def test_lean_sends_soap_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=soap.build_ack("S", "000000", "", "SL1"))

    c = LeanTaxClient(ENDPOINT, timeout=1.0, transport=mock(handler))
    try:
        await call(c)
    finally:
        await c.aclose()
    assert seen[0].headers["content-type"] == soap.SOAP_CONTENT_TYPE
    assert seen[0].headers["soapaction"] == f'"{soap.SOAP_ACTION_ENROLL}"'


# ------------------------------------------------------------------ lean == zeep == WSDL

def _canon(el: Any) -> tuple[Any, ...]:
    return (el.tag, (el.text or "").strip(), tuple(_canon(c) for c in el))


async def test_zeep_and_lean_bodies_are_equivalent() -> None:
    schema = etree.XMLSchema(etree.parse(str(soap.TAX_XSD)))
    z = ZeepTaxClient(soap.TAX_WSDL, ENDPOINT, 1.0)
    try:
        for name in ("001_ok", "002_cert_type_short", "003_female", "004_wage"):
            req = load(name)
            lean = soap.build_enroll_request(req, "SER-EQ", sent_at=SENT_AT)
            zeep_body = z.render_enroll(req, "SER-EQ", sent_at=SENT_AT)
            assert _canon(soap.parse_payload(lean)) == _canon(soap.parse_payload(zeep_body))
            assert schema.validate(soap.parse_payload(zeep_body)), schema.error_log
            assert soap.parse_enroll_request(zeep_body) == soap.parse_enroll_request(lean)
    finally:
        await z.aclose()


async def test_served_wsdl_drives_zeep(state: SimState, tmp_path: Path) -> None:
    app = create_app(state, callback_url=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as http:
        r = await http.get("/tax/ws?wsdl")
        assert (await http.get("/tax/ws")).status_code == 404
        health = (await http.get("/tax/ws/health")).json()
    assert r.status_code == 200 and health["status"] == "ok"
    assert b'location="http://sim.test/tax/ws"' in r.content
    assert b"schemaLocation" not in r.content  # schema inlined: one self-contained document
    (tmp_path / "served.wsdl").write_bytes(r.content)
    z = ZeepTaxClient(tmp_path / "served.wsdl", "http://sim.test/tax/ws", 1.0, transport=transport)
    try:
        ack = await z.enroll_employee(load(), serial="SER-WSDL")
    finally:
        await z.aclose()
    assert ack.accept_no and sum(state.log.effects.values()) == 1


async def test_simulator_refuses_schema_invalid_requests(state: SimState) -> None:
    body = soap.build_enroll_request(load(), "SER-1").replace(b">310<", b">31<")
    transport = httpx.ASGITransport(app=create_app(state, callback_url=None))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as http:
        r = await http.post("/tax/ws", content=body)
    assert r.status_code == 500
    with pytest.raises(ClientError, match="schema"):
        soap.parse_ack(r.content)
    assert not state.log.effects


# ------------------------------------------------------------------ EmployeeStop

def load_stop(name: str = "001_ok", when: date = date(2025, 3, 31)) -> EmployeeStop:
    e = load(name)
    return EmployeeStop(unit_credit_code=e.unit_credit_code, id_number=e.id_number,
                        name=e.name, stop_date=when, reason_code="02")


@pytest.fixture
async def sim_client(request: pytest.FixtureRequest, state: SimState
                     ) -> AsyncIterator[tuple[TaxPort, Any]]:
    app = create_app(state, callback_url=None)
    c = FACTORIES[request.param](httpx.ASGITransport(app=app))
    yield c, app.state.tax
    await c.aclose()


@pytest.mark.parametrize("sim_client", sorted(FACTORIES), indirect=True)
async def test_stop_records_one_effect_with_its_date(sim_client: tuple[TaxPort, Any],
                                                     state: SimState) -> None:
    c, sim = sim_client
    stop = load_stop()
    ack = await c.submit("EmployeeStop", stop, serial="SER-STOP")
    assert ack.accept_no.startswith("SL")
    assert state.log.effects == {f"EmployeeStop:{stop.unit_credit_code}:{stop.id_number}": 1}
    assert sim.stops["SER-STOP"]["tbrq"] == "2025-03-31"
    assert sim.stops["SER-STOP"]["tbyy"] == "02"
    assert await c.submit("EmployeeStop", stop, serial="SER-STOP") == ack  # dedupe on ywlsh
    assert state.log.replays == 1 and sum(state.log.effects.values()) == 1


@pytest.mark.parametrize("sim_client", sorted(FACTORIES), indirect=True)
async def test_stop_faults_are_drawn_for_its_operation(sim_client: tuple[TaxPort, Any],
                                                       state: SimState) -> None:
    c, _ = sim_client
    state.faults.append(Fault(kind="http_5xx", operation="EmployeeEnroll"))
    state.faults.append(Fault(kind="reject", code="TX301", text="无有效参保记录", count=1,
                              operation="EmployeeStop"))
    with pytest.raises(BusinessRejected) as e:
        await c.submit("EmployeeStop", load_stop(), serial="S1")
    assert e.value.reason_code == "TX301" and not state.log.effects
    # the EmployeeEnroll fault is not drawn for a stop
    assert (await c.submit("EmployeeStop", load_stop(), serial="S2")).accept_no


@pytest.mark.parametrize("flavour", sorted(FACTORIES))
@pytest.mark.parametrize(("transport", "error"), [
    (raising(httpx.ReadTimeout), PartnerTimeout),
    (answer(503, b"busy", "text/plain"), PartnerUnavailable),
    (answer(500, soap.build_fault("Client", "bad")), ClientError),
    (answer(200, soap.build_ack("F", "TX301", "no", operation="EmployeeStop")),
     BusinessRejected),
], ids=["timeout", "503", "client-fault", "ret-F"])
async def test_stop_error_mapping(flavour: str, transport: httpx.MockTransport,
                                  error: type[Exception]) -> None:
    c = FACTORIES[flavour](transport)
    try:
        with pytest.raises(error):
            await c.submit("EmployeeStop", load_stop(), serial="S1")
    finally:
        await c.aclose()


async def test_lean_stop_sends_its_soap_action() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=soap.build_ack("S", "000000", "", "SL1",
                                                          operation="EmployeeStop"))

    c = LeanTaxClient(ENDPOINT, timeout=1.0, transport=mock(handler))
    try:
        await c.submit("EmployeeStop", load_stop(), serial="S1")
    finally:
        await c.aclose()
    assert seen[0].headers["soapaction"] == f'"{soap.SOAP_ACTION_STOP}"'


async def test_zeep_and_lean_stop_bodies_are_equivalent() -> None:
    schema = etree.XMLSchema(etree.parse(str(soap.TAX_XSD)))
    z = ZeepTaxClient(soap.TAX_WSDL, ENDPOINT, 1.0)
    try:
        for name in ("001_ok", "003_female"):
            stop = load_stop(name)
            lean = soap.build_stop_request(stop, "SER-EQ", sent_at=SENT_AT)
            zeep_body = z.render_stop(stop, "SER-EQ", sent_at=SENT_AT)
            assert _canon(soap.parse_payload(lean)) == _canon(soap.parse_payload(zeep_body))
            assert schema.validate(soap.parse_payload(zeep_body)), schema.error_log
    finally:
        await z.aclose()


async def test_served_wsdl_offers_stop_to_zeep(state: SimState, tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=create_app(state, callback_url=None))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as http:
        (tmp_path / "served.wsdl").write_bytes((await http.get("/tax/ws?wsdl")).content)
    z = ZeepTaxClient(tmp_path / "served.wsdl", "http://sim.test/tax/ws", 1.0,
                      transport=transport)
    try:
        assert (await z.submit("EmployeeStop", load_stop(), serial="SER-WSDL-STOP")).accept_no
    finally:
        await z.aclose()
    assert list(state.log.effects) == [f"EmployeeStop:{load().unit_credit_code}:"
                                       f"{load().id_number}"]


async def test_stop_feedback_names_its_operation(state: SimState) -> None:
    pushed: list[bytes] = []

    def hub(request: httpx.Request) -> httpx.Response:
        pushed.append(request.content)
        return httpx.Response(200, content=soap.build_feedback_reply(True, "ok"))

    app = create_app(state, callback_url="http://hub.test/cb", feedback_delay_s=0,
                     callback_transport=mock(hub))
    c = LeanTaxClient(ENDPOINT, timeout=2.0, transport=httpx.ASGITransport(app=app))
    try:
        ack = await c.submit("EmployeeStop", load_stop(), serial="SER-FB-STOP")
        await app.state.tax.drain()
    finally:
        await c.aclose()
        await app.state.tax.aclose()
    fb = soap.parse_feedback_request(pushed[0])
    assert (fb.operation, fb.biz_msg_id, fb.accept_no, fb.status) == (
        "EmployeeStop", "SER-FB-STOP", ack.accept_no, "accepted")
