"""Student batch SOAP codec, client error mapping and the tax desk's rules (no sockets)."""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from lxml import etree

from adapters.tax.soap import build_fault, parse_payload
from adapters.tax.student_batch import (
    STUDENT_BATCH_XSD,
    StudentBatchClient,
    build_batch_request,
    build_batch_response,
    op_of,
    parse_batch_request,
    parse_batch_response,
    serial_for,
)
from contracts.clock import BEIJING
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerTimeout,
    PartnerUnavailable,
    ValidationFailed,
)
from contracts.ids import id_check_char, make_id_number
from contracts.student_batch import (
    RowResult,
    StudentEnrollRow,
    StudentRow,
    validate_row,
)
from simulators.simkit import Fault, SimState
from simulators.student_batch import StudentBatchDesk
from simulators.tax_rules import community_for

TODAY = date(2025, 10, 1)
SENT_AT = datetime(2025, 10, 1, 9, 30, tzinfo=BEIJING)
SCHEMA = etree.XMLSchema(etree.parse(str(STUDENT_BATCH_XSD)))


Rows = list[tuple[int, StudentRow]]


def enroll_rows(n: int, *, seed: int = 1, start: int = 2, **over: Any) -> Rows:
    rng = random.Random(seed)
    out: list[tuple[int, StudentRow]] = []
    for i in range(n):
        values: dict[str, Any] = {
            "school_name": "东南大学", "school_code": "10286", "student_no": f"S{i:05d}",
            "id_number": make_id_number(rng, born=date(2005, 1, 1 + i % 28)), "name": "李思雨",
            "phone": "13912345678", "enroll_month": "202409", "insure_year": "2026",
            "community": community_for("320106", i), **over}
        out.append((start + i, validate_row("enroll", values, today=TODAY)))
    return out


def stop_rows(enrolled: Rows, **over: Any) -> Rows:
    return [(n, validate_row("stop", {"id_number": r.id_number, "name": r.name,
                                      "stop_date": "2026-07-01", "stop_reason": "毕业", **over},
                             today=TODAY)) for n, r in enrolled]


def payload_of(body: bytes) -> Any:
    return parse_payload(body, max_bytes=1 << 24)


# ---------------------------------------------------------------- codec

def test_enroll_request_round_trip_and_schema() -> None:
    rows = enroll_rows(3)
    rows[1] = (rows[1][0], rows[1][1].model_copy(update={"difficulty_type": "01"}))
    body = build_batch_request("enroll", "UNIV_A", 2, 5, rows, sent_at=SENT_AT)
    assert SCHEMA.validate(payload_of(body)), SCHEMA.error_log
    req = parse_batch_request(body)
    assert (req.op, req.serial, req.batch_id, req.chunk_no, req.chunk_count, req.row_count) == \
        ("enroll", "UNIV_A-2", "UNIV_A", 2, 5, 3)
    first = rows[0][1]
    assert isinstance(first, StudentEnrollRow)
    assert req.rows[0] == {
        "xh": "2", "zjhm": first.id_number, "xm": "李思雨", "xb": first.gender,
        "csrq": first.birth_date.isoformat(), "lxdh": "13912345678", "yxdm": "10286",
        "yxmc": "东南大学", "xsxh": "S00000", "rxny": "202409", "cbnd": "2026",
        "jcybqh": first.community}
    assert req.rows[1]["knrylb"] == "01" and "knrylb" not in req.rows[2]
    assert build_batch_request("enroll", "UNIV_A", 2, 5, rows, sent_at=SENT_AT) == body


def test_stop_request_round_trip_and_schema() -> None:
    rows = stop_rows(enroll_rows(2), remark="毕业离校")
    body = build_batch_request("stop", "GRAD_2026", 1, 1, rows, sent_at=SENT_AT)
    assert SCHEMA.validate(payload_of(body)), SCHEMA.error_log
    req = parse_batch_request(body)
    assert req.op == "stop" and req.serial == serial_for("GRAD_2026", 1)
    assert {k: req.rows[0][k] for k in ("tbrq", "tbyy", "bz")} == \
        {"tbrq": "2026-07-01", "tbyy": "01", "bz": "毕业离校"}


def test_builder_refuses_bad_chunks() -> None:
    rows = enroll_rows(1)
    with pytest.raises(ValidationFailed, match="row"):
        build_batch_request("stop", "B", 1, 1, rows)  # an enroll row in a stop chunk
    with pytest.raises(ValidationFailed, match="fkxh"):
        build_batch_request("enroll", "B", 3, 2, rows)
    with pytest.raises(ValidationFailed, match="1-1000"):
        build_batch_request("enroll", "B", 1, 1, [])
    with pytest.raises(ValidationFailed, match="ywlsh"):
        build_batch_request("enroll", "bad id!", 1, 1, rows)


def test_a_full_chunk_of_1000_rows_is_schema_valid_and_1001_is_not() -> None:
    rows = enroll_rows(1000)
    body = build_batch_request("enroll", "BIG", 1, 1, rows)
    assert len(body) < 1 << 20 and SCHEMA.validate(payload_of(body))
    with pytest.raises(ValidationFailed):
        build_batch_request("enroll", "BIG", 1, 1, rows + enroll_rows(1, seed=9))


def test_response_round_trip() -> None:
    results = [RowResult(row_no=2, id_number="320106200501010011", status="success",
                         reason_text="参保成功"),
               RowResult(row_no=3, id_number="32010620050102002X", status="failure",
                         reason_code="TX301", reason_text="基层医保区划税务不认可"),
               RowResult(row_no=4, id_number="320106200501030038", status="difficulty",
                         reason_code="KN02")]
    body = build_batch_response("enroll", results, batch_id="B", chunk_no=1)
    assert SCHEMA.validate(payload_of(body)), SCHEMA.error_log
    assert parse_batch_response("enroll", body, batch_id="B", chunk_no=1) == results
    with pytest.raises(ValidationFailed, match="fkxh"):
        parse_batch_response("enroll", body, batch_id="B", chunk_no=2)
    with pytest.raises(ValidationFailed, match="StudentBatchStopResponse"):
        parse_batch_response("stop", body)


def test_rejected_chunk_and_faults_map_to_hub_errors() -> None:
    refused = build_batch_response("stop", [], ok=False, code="TX399", msg="批次已关闭")
    with pytest.raises(BusinessRejected) as rejected:
        parse_batch_response("stop", refused)
    assert (rejected.value.reason_code, rejected.value.reason_text) == ("TX399", "批次已关闭")
    with pytest.raises(ClientError):
        parse_batch_response("stop", build_fault("Client", "bad"))
    with pytest.raises(PartnerUnavailable):
        parse_batch_response("stop", build_fault("Server", "busy"))


HOSTILE = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
<soap-env:Body><x>&lol2;</x></soap-env:Body></soap-env:Envelope>"""


def test_doctype_and_oversize_are_refused_before_parsing() -> None:
    for parse in (parse_batch_request, lambda b: parse_batch_response("enroll", b)):
        with pytest.raises(ValidationFailed) as exc:
            parse(HOSTILE)
        assert exc.value.field == "DOCTYPE"
    body = build_batch_request("enroll", "B", 1, 1, enroll_rows(5))
    with pytest.raises(ValidationFailed, match="exceeds"):
        parse_batch_request(body, max_bytes=len(body) - 1)


def test_op_of_reads_names_actions_and_elements() -> None:
    assert op_of('"http://hub.njyb.gov.cn/tax/v1/StudentBatchStop"') == "stop"
    assert op_of("{http://hub.njyb.gov.cn/tax/v1}StudentBatchEnrollRequest") == "enroll"
    with pytest.raises(ValidationFailed):
        op_of("EmployeeEnroll")


def test_tax_xsd_can_inline_the_batch_schema() -> None:
    """The lead's generator inlines student_batch.xsd into tax.xsd: no clashes, still valid."""
    from contracts.taxcat_xsd import render_xsd

    combined = etree.XMLSchema(etree.fromstring(render_xsd().encode()))
    body = build_batch_request("enroll", "B", 1, 1, enroll_rows(2))
    assert combined.validate(payload_of(body)), combined.error_log


# ---------------------------------------------------------------- client error mapping

def client_for(handler: Any) -> StudentBatchClient:
    return StudentBatchClient("http://tax.test/tax/ws", timeout=1.0,
                              transport=httpx.MockTransport(handler))


async def test_client_posts_soap_action_and_reads_results() -> None:
    rows = enroll_rows(2)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        req = parse_batch_request(request.content)
        results = [RowResult(row_no=int(r["xh"]), id_number=r["zjhm"], status="success")
                   for r in req.rows]
        return httpx.Response(200, content=build_batch_response(
            req.op, results, batch_id=req.batch_id, chunk_no=req.chunk_no))

    async with client_for(handler) as client:
        results = await client.submit("enroll", "B7", 3, 4, rows)
    assert [r.row_no for r in results] == [2, 3]
    assert seen[0].headers["SOAPAction"] == '"http://hub.njyb.gov.cn/tax/v1/StudentBatchEnroll"'
    assert parse_batch_request(seen[0].content).serial == "B7-3"


@pytest.mark.parametrize(("response", "error"), [
    (httpx.Response(503, text="busy"), PartnerUnavailable),
    (httpx.Response(429), PartnerUnavailable),
    (httpx.Response(400, text="bad"), ClientError),
    (httpx.Response(500, content=build_fault("Client", "schema")), ClientError),
    (httpx.Response(500, content=build_fault("Server", "db down")), PartnerUnavailable),
    (httpx.Response(200, content=b"<html>proxy error</html>"), PartnerUnavailable),
    (httpx.Response(200, content=build_batch_response("enroll", [], ok=False, code="TX399")),
     BusinessRejected),
])
async def test_client_maps_failures_at_the_boundary(response: httpx.Response,
                                                    error: type[Exception]) -> None:
    async with client_for(lambda _: response) as client:
        with pytest.raises(error):
            await client.submit("enroll", "B", 1, 1, enroll_rows(1))


@pytest.mark.parametrize(("exc", "error"), [
    (httpx.ReadTimeout("slow"), PartnerTimeout),
    (httpx.ConnectError("refused"), PartnerUnavailable),
])
async def test_client_maps_transport_errors(exc: Exception, error: type[Exception]) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise exc

    async with client_for(handler) as client:
        with pytest.raises(error):
            await client.submit("enroll", "B", 1, 1, enroll_rows(1))


# ---------------------------------------------------------------- the desk

async def desk_call(desk: StudentBatchDesk, body: bytes,
                    op: str = "") -> tuple[int, list[RowResult] | Exception]:
    status, answer = await desk.handle(op, body)
    try:
        req = parse_batch_request(body)
        return status, parse_batch_response(req.op, answer)
    except Exception as exc:  # a fault, as the client would see it
        return status, exc


async def test_desk_rules_and_per_person_effects() -> None:
    desk = StudentBatchDesk()
    rows = enroll_rows(4)
    rows[1] = (rows[1][0], rows[1][1].model_copy(update={"community": "320106099099"}))
    rows[2] = (rows[2][0], rows[2][1].model_copy(update={"difficulty_type": "05"}))
    already = rows[3][1]
    desk.preload(already.id_number, already.name, "2026")
    status, results = await desk_call(desk, build_batch_request("enroll", "E", 1, 1, rows))
    assert status == 200 and isinstance(results, list)
    assert [(r.status, r.reason_code) for r in results] == [
        ("success", ""), ("failure", "TX301"), ("difficulty", "KN05"), ("failure", "TX311")]
    assert dict(desk.enrolled) == {rows[0][1].id_number: 1, rows[2][1].id_number: 1}

    stops = stop_rows([rows[0], rows[1], rows[2]])
    stops[2] = (stops[2][0], stops[2][1].model_copy(update={"name": "王五"}))
    _, results = await desk_call(desk, build_batch_request("stop", "S", 1, 1, stops))
    assert isinstance(results, list)
    assert [(r.status, r.reason_code) for r in results] == [
        ("success", ""), ("failure", "TX312"), ("failure", "TX314")]
    _, again = await desk_call(desk, build_batch_request("stop", "S2", 1, 1, stops[:1]))
    assert isinstance(again, list) and again[0].reason_code == "TX313"
    assert dict(desk.stopped) == {rows[0][1].id_number: 1}
    assert desk.summary()["duplicates"] == {}  # enrolled once and stopped once is no duplicate


async def test_desk_difficulty_register_by_id_suffix() -> None:
    desk = StudentBatchDesk(difficulty_suffixes={"0000"})
    row = enroll_rows(1)[0][1]
    assert isinstance(row, StudentEnrollRow)
    body17 = row.id_number[:13] + "0000"
    flagged = row.model_copy(update={"id_number": body17 + id_check_char(body17)})
    _, results = await desk_call(desk, build_batch_request("enroll", "R", 1, 1, [(2, flagged)]))
    assert isinstance(results, list) and results[0].status == "difficulty"


async def test_desk_replays_a_serial_and_refuses_reuse_with_other_rows() -> None:
    desk = StudentBatchDesk()
    body = build_batch_request("enroll", "D", 1, 2, enroll_rows(3))
    first = await desk.handle("StudentBatchEnroll", body)
    again = await desk.handle("StudentBatchEnroll",
                              build_batch_request("enroll", "D", 1, 2, enroll_rows(3)))
    assert again == first and desk.replays == 1
    assert sum(desk.enrolled.values()) == 3
    status, answer = await desk.handle("", build_batch_request("enroll", "D", 1, 2,
                                                               enroll_rows(3, seed=5)))
    assert status == 500
    with pytest.raises(ClientError, match="已用于另一批数据"):
        parse_batch_response("enroll", answer)


async def test_desk_refuses_schema_violations_and_wrong_action() -> None:
    desk = StudentBatchDesk()
    body = build_batch_request("enroll", "V", 1, 1, enroll_rows(1))
    bad = body.replace(b"<tax:lxdh>13912345678</tax:lxdh>", b"<tax:lxdh>12345</tax:lxdh>")
    for op, payload in (("", bad), ("StudentBatchStop", body), ("", HOSTILE)):
        status, answer = await desk.handle(op, payload)
        assert status == 500
        with pytest.raises(ClientError):
            parse_batch_response("enroll", answer)
    assert not desk.enrolled


async def test_desk_faults_come_from_the_draw_hook() -> None:
    state = SimState(faults=[Fault(kind="http_5xx", count=1, match="F-2"),
                             Fault(kind="reject", count=1, code="TX399", text="批次已关闭",
                                   operation="StudentBatchStop")])
    desk = StudentBatchDesk(draw=state.draw, log=state.log)
    chunk2 = build_batch_request("enroll", "F", 2, 2, enroll_rows(2))
    assert (await desk.handle("", chunk2))[0] == 503
    assert not desk.enrolled
    assert (await desk.handle("", chunk2))[0] == 200
    stop = build_batch_request("stop", "F", 1, 1, stop_rows(enroll_rows(1)))
    _, results = await desk_call(desk, stop)
    assert isinstance(results, BusinessRejected) and results.reason_code == "TX399"
    assert state.log.calls == 3
    assert sum(state.log.effects.values()) == 2  # the two students of chunk 2, once each
    await desk.handle("", chunk2)
    assert (state.log.replays, sum(state.log.effects.values())) == (1, 2)
