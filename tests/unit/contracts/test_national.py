"""The national envelope: msgid layout, defaults, strictness, infcode normalisation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.clock import BEIJING
from contracts.national import (
    NationalRequest,
    NationalResponse,
    format_respond_time,
    make_msgid,
    make_refmsgid,
)

WHEN = datetime(2024, 6, 1, 9, 30, 5, 123456, tzinfo=BEIJING)
MSGID = "NJYBHUB00001202406010930050007"


def _req(**over: Any) -> dict[str, Any]:
    return {"infno": "H2101", "msgid": MSGID, "input": {"data": {}}, **over}


def test_make_msgid_is_sender_time_and_sequence() -> None:
    msgid = make_msgid("NJYBHUB00001", WHEN, 7)
    assert msgid == MSGID
    assert len(msgid) == 30


@pytest.mark.parametrize(("sender", "seq"), [("NJYBHUB0001", 1), ("njybhub00001", 1),
                                             ("NJYBHUB00001", 10000), ("NJYBHUB00001", -1)])
def test_make_msgid_refuses_what_would_break_the_layout(sender: str, seq: int) -> None:
    with pytest.raises(ValueError):
        make_msgid(sender, WHEN, seq)


def test_refmsgid_and_respond_time_layouts() -> None:
    assert make_refmsgid("320100", WHEN, 42) == "320100" + "20240601093005" + "0000000042"
    assert format_respond_time(WHEN) == "20240601093005123"


def test_request_defaults_and_wire_dump() -> None:
    req = NationalRequest.model_validate(_req())
    wire = req.to_wire()
    assert wire["infver"] == "V1.0"
    assert wire["opter_type"] == "1"
    assert wire["insuplc_admdvs"] == "320100"
    assert datetime.strptime(wire["inf_time"], "%Y-%m-%d %H:%M:%S")
    assert "app_id" not in wire and "enc_type" not in wire
    assert NationalRequest.model_validate(wire) == req


@pytest.mark.parametrize("infno", ["1101", "9001", "H2101", "H9201"])
def test_national_and_hub_assigned_infnos(infno: str) -> None:
    assert NationalRequest.model_validate(_req(infno=infno)).infno == infno


@pytest.mark.parametrize(("field", "value"), [
    ("infno", "h2101"), ("infno", "110"), ("infno", "H21010"),
    ("msgid", MSGID[:-1]), ("msgid", "NJYBHUB00001202413010930050007"),  # month 13
    ("inf_time", "2024/06/01 09:30:00"), ("opter_type", "4"), ("signtype", "RSA"),
    ("insuplc_admdvs", "3201"), ("recer_sys_code", "X" * 11), ("input", [1]),
])
def test_request_rejects_bad_fields(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        NationalRequest.model_validate(_req(**{field: value}))
    assert exc.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize("field", ["infno", "msgid", "input"])
def test_request_requires_infno_msgid_input(field: str) -> None:
    body = _req()
    del body[field]
    with pytest.raises(ValidationError):
        NationalRequest.model_validate(body)


def test_request_tolerates_nulls_numbers_and_deployment_fields() -> None:
    req = NationalRequest.model_validate(_req(dev_no=None, cainfo=None, opter_type=2,
                                              enc_type="", app_id="APP1", serial_no="x"))
    assert (req.dev_no, req.cainfo, req.opter_type, req.enc_type) == ("", "", "2", None)
    assert req.app_id == "APP1"
    assert "serial_no" not in req.to_wire()


def test_request_is_frozen() -> None:
    req = NationalRequest.model_validate(_req())
    with pytest.raises(ValidationError):
        req.infno = "1101"  # type: ignore[misc]


@pytest.mark.parametrize(("raw", "code"), [(0, 0), ("0", 0), (" 0 ", 0), (-1, -1), ("-1", -1),
                                           (0.0, 0), ("-2", -1), (1, -1)])
def test_infcode_normalised_to_int(raw: Any, code: int) -> None:
    resp = NationalResponse.model_validate({"infcode": raw})
    assert resp.infcode == code
    assert resp.ok is (code == 0)


@pytest.mark.parametrize("raw", ["ok", "", None, True, 0.5, [0]])
def test_infcode_refuses_non_integers(raw: Any) -> None:
    with pytest.raises(ValidationError):
        NationalResponse.model_validate({"infcode": raw})


def test_response_accepts_platform_nulls_and_extras() -> None:
    resp = NationalResponse.model_validate_json(
        '{"infcode":"0","inf_refmsgid":null,"err_msg":null,"output":{"a":1},'
        '"signtype":null,"cainfo":null,"warn_msg":"x"}')
    assert resp.ok and resp.output == {"a": 1}


def test_success_and_failure_builders() -> None:
    ok = NationalResponse.success({"k": 1}, refmsgid="r", now=WHEN)
    assert (ok.infcode, ok.respond_time, ok.refmsg_time) == (0, "20240601093005123",
                                                             "2024-06-01 09:30:05")
    bad = NationalResponse.failure("nope", code="E1", now=WHEN)
    assert (bad.infcode, bad.err_msg, bad.output) == (-1, "nope", {"err_code": "E1"})
