"""adapters.tax.initial_load: the chunk codec both ways and the client's error mapping."""

from __future__ import annotations

import random
from datetime import date, datetime

import httpx
import pytest

from adapters.tax.initial_load import (
    OPERATIONS,
    InitialLoadClient,
    build_load_request,
    build_load_response,
    is_load_call,
    kind_of,
    parse_load_request,
    parse_load_response,
)
from adapters.tax.soap import build_fault
from contracts.errors import BusinessRejected, ClientError, PartnerUnavailable, ValidationFailed
from contracts.ids import make_credit_code, make_id_number
from contracts.initial_load import LoadResult, validate_load_row

RNG = random.Random(5)
USCC = make_credit_code(RNG)
IDS = [make_id_number(RNG) for _ in range(3)]
SENT = datetime(2026, 11, 30, 9, 0)


def suspend_rows() -> list[tuple[int, object]]:
    return [(n + 2, validate_load_row("employee_suspend", {
        "credit_code": USCC, "id_number": i, "name": "钱七", "suspend_date": "2026-11-01",
        "suspend_reason": "05", "remark": "离职" if n == 0 else ""}, today=date(2026, 11, 30)))
            for n, i in enumerate(IDS)]


def test_a_chunk_round_trips_with_its_serial_and_optional_cells() -> None:
    body = build_load_request("employee_suspend", "ILS_abc_500", 2, 3,
                              suspend_rows(), sent_at=SENT)  # type: ignore[arg-type]
    req = parse_load_request(body)
    assert (req.kind, req.serial, req.batch_id, req.chunk_no, req.chunk_count, req.row_count) \
        == ("employee_suspend", "ILS_abc_500-2", "ILS_abc_500", 2, 3, 3)
    assert req.rows[0] == {"xh": "2", "shxydm": USCC, "zjhm": IDS[0], "xm": "钱七",
                           "zdrq": "2026-11-01", "zdyy": "05", "bz": "离职"}
    assert "bz" not in req.rows[1]
    assert is_load_call("", body[:2048]) and kind_of(OPERATIONS["unit"]) == "unit"


def test_a_response_round_trips_and_a_refusal_or_fault_raises() -> None:
    results = [LoadResult(row_no=2, key=USCC, ok=True),
               LoadResult(row_no=3, key=USCC, ok=False, reason_code="TXL01", reason_text="已登记")]
    body = build_load_response("unit", results, batch_id="B", chunk_no=1)
    assert parse_load_response("unit", body, batch_id="B", chunk_no=1) == results
    with pytest.raises(ValidationFailed):
        parse_load_response("unit", body, batch_id="B", chunk_no=2)
    with pytest.raises(BusinessRejected):
        parse_load_response("unit", build_load_response("unit", [], ok=False, code="X1"))
    with pytest.raises(ClientError):
        parse_load_response("unit", build_fault("Client", "bad"))


@pytest.mark.parametrize(("status", "body", "error"), [
    (503, b"busy", PartnerUnavailable),
    (400, b"bad", ClientError),
    (200, b"<not-xml", PartnerUnavailable),
])
async def test_the_client_maps_failures_at_the_boundary(
        status: int, body: bytes, error: type[Exception]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["SOAPAction"] == '"http://hub.njyb.gov.cn/tax/v1/' \
                                                'EmployeeBatchSuspend"'
        return httpx.Response(status, content=body)

    async with InitialLoadClient("http://tax/tax/ws",
                                 transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(error):
            await client.submit("employee_suspend", "B", 1, 1,
                                suspend_rows())  # type: ignore[arg-type]
