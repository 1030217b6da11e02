"""Core wire <-> canonical: errors name core's wire fields, inverses really invert."""

from __future__ import annotations

import json
import random
from datetime import date
from typing import Any

import pytest

from adapters.core.translate import (
    CORE_EVENT_TYPES,
    ENROLLMENT_WIRE_FIELDS,
    employee_query_input,
    enrollment_to_event,
    event_to_enrollment,
    input_to_sync_status,
    parse_national_request,
    query_from_input,
    sync_status_to_input,
)
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate
from contracts.errors import PermanentError, ValidationFailed
from contracts.ids import birth_date_of, gender_of, make_credit_code, make_id_number

MSGID = "NJYBCORE0001202406010930000001"


@pytest.fixture
def wire() -> dict[str, Any]:
    rng = random.Random(11)
    certno = make_id_number(rng, born=date(1988, 4, 9), male=True)
    return {
        "uscc": make_credit_code(rng), "emp_name": "南京钟山软件有限公司", "psn_cert_type": "01",
        "certno": certno, "psn_name": "张伟", "gend": gender_of(certno),
        "brdy": birth_date_of(certno).isoformat(), "tel": "13912345678", "insutype": "310",
        "psn_type": "11", "begn_ym": "202406", "insu_admdvs": "320102", "wag": 850_000,
        "seq": 4,
    }


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as exc:
        event_to_enrollment({"data": data})
    assert exc.value.partner == "core"
    return exc.value.errors


def test_wire_names_map_to_canonical(wire: dict[str, Any]) -> None:
    e = event_to_enrollment({"data": wire})
    assert (e.unit_credit_code, e.id_number, e.name, e.phone, e.wage, e.entity_seq) == (
        wire["uscc"], wire["certno"], "张伟", "13912345678", 850_000, 4)
    assert e.birth_date == date(1988, 4, 9)
    assert e.start_month == "202406" and e.admdvs == "320102"


def test_accepts_bare_data_as_well_as_input(wire: dict[str, Any]) -> None:
    assert event_to_enrollment(wire) == event_to_enrollment({"data": wire})


def test_enrollment_to_event_is_the_inverse(wire: dict[str, Any]) -> None:
    e = event_to_enrollment({"data": wire})
    assert enrollment_to_event(e) == wire
    assert set(enrollment_to_event(e)) == set(ENROLLMENT_WIRE_FIELDS)
    assert set(ENROLLMENT_WIRE_FIELDS.values()) == set(EmployeeEnrollment.model_fields)


def test_numeric_codes_and_short_cert_type_normalised(wire: dict[str, Any]) -> None:
    wire.update(psn_cert_type="1", gend=int(wire["gend"]), insutype=310, psn_type=11)
    e = event_to_enrollment(wire)
    assert (e.psn_cert_type, e.gender, e.insutype, e.psn_type) == ("01", "1", "310", "11")


def test_bad_checksum_named_certno(wire: dict[str, Any]) -> None:
    good = wire["certno"]
    wire["certno"] = good[:17] + ("3" if good[17] != "3" else "4")
    [(field, reason)] = _errors(wire)
    assert field == "certno"
    assert reason == f"check character should be {good[17]}, got {wire['certno'][17]}"


def test_cross_field_errors_named_by_wire_field(wire: dict[str, Any]) -> None:
    wire["brdy"] = "1988-04-10"
    assert _errors(wire) == [("brdy", "brdy 1988-04-10 disagrees with the ID number "
                                      "(1988-04-09)")]
    wire["brdy"] = "1988-04-09"
    wire["gend"] = "2"
    assert _errors(wire) == [("gend", "gend 2 disagrees with the ID number (1)")]


@pytest.mark.parametrize(("field", "value", "reason_part"), [
    ("tel", "0251234567", "11-digit"),
    ("psn_name", "张3", "without digits"),
    ("uscc", "91320102ABCDEFGHIJ", "not allowed"),
    ("insu_admdvs", "310000", "not a Nanjing division"),
    ("begn_ym", "2024-06", "yyyyMM"),
    ("brdy", "19880409", "yyyy-MM-dd"),
    ("brdy", 576518400, "yyyy-MM-dd"),
    ("wag", -1, "greater than or equal to 0"),
    ("insutype", "390", "310"),
    ("psn_cert_type", "05", "unknown certificate type"),
])
def test_field_errors_name_the_wire_field(wire: dict[str, Any], field: str, value: Any,
                                          reason_part: str) -> None:
    wire[field] = value
    [(name, reason)] = _errors(wire)
    assert name == field
    assert reason_part in reason


def test_missing_and_unknown_fields(wire: dict[str, Any]) -> None:
    del wire["psn_name"]
    wire["name"] = "张伟"  # a canonical name is not a wire name
    assert sorted(_errors(wire)) == [("name", "unknown field"), ("psn_name", "required")]


def test_every_bad_field_is_reported(wire: dict[str, Any]) -> None:
    wire.update(tel="1", begn_ym="x", wag="lots")
    assert [f for f, _ in _errors(wire)] == ["tel", "begn_ym", "wag"]


@pytest.mark.parametrize("bad", [{"data": [1]}, {"data": "x"}])
def test_data_must_be_an_object(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as exc:
        event_to_enrollment(bad)
    assert exc.value.field == "data"


def test_sync_status_round_trip() -> None:
    u = SyncStatusUpdate(correlation_id="c1", biz_type="tax.employee.enroll",
                         business_key="91320102X:320102199001011234", id_number="320102",
                         status="rejected", reason_code="TX201", reason_text="重复参保",
                         accept_no="A1")
    wire = sync_status_to_input(u)
    assert wire["data"]["sync_stas"] == "2" and wire["data"]["biz_key"] == u.business_key
    assert input_to_sync_status(wire) == u
    assert input_to_sync_status({**wire, "serial": "s1"}) == u


def test_sync_status_bad_code_named_by_wire_field() -> None:
    with pytest.raises(ValidationFailed) as exc:
        input_to_sync_status({"data": {"corr_id": "c", "biz_type": "t", "biz_key": "k",
                                       "sync_stas": "synced"}})
    assert exc.value.errors == [("sync_stas", "must be one of 1, 2, 3, got 'synced'")]


def test_employee_query_round_trip() -> None:
    assert query_from_input(employee_query_input("32010219900101123x", "U1")) == (
        "32010219900101123X", "U1")
    with pytest.raises(ValidationFailed) as exc:
        query_from_input({"data": {"certno": ""}})
    assert exc.value.errors == [("certno", "required"), ("uscc", "required")]


def test_core_event_types() -> None:
    assert CORE_EVENT_TYPES["H2101"] == "tax.employee.enroll"


def _body(**over: Any) -> bytes:
    return json.dumps({"infno": "H2101", "msgid": MSGID, "input": {"data": {}}, **over}).encode()


def test_parse_national_request_ok() -> None:
    req = parse_national_request(_body())
    assert (req.infno, req.msgid, req.input) == ("H2101", MSGID, {"data": {}})


@pytest.mark.parametrize(("body", "field", "reason_part"), [
    (b'{"infno": "H2101", ', "body", "line 1 column 20"),
    (b"[1, 2]", "body", "JSON object"),
    (b'{"x": NaN}', "body", "NaN"),
    (b"\xff\xfe{}", "body", "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "body", ""),
    (_body(infno="H9999"), "infno", "unknown transaction H9999"),
    (_body(infno="bad"), "infno", "pattern"),
    (_body(msgid="short"), "msgid", "pattern"),
])
def test_parse_national_request_names_the_problem(body: bytes, field: str,
                                                  reason_part: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_national_request(body, max_bytes=1_000_000)
    assert exc.value.field == field
    assert reason_part in exc.value.errors[0][1]
    assert isinstance(exc.value, PermanentError)


@pytest.mark.parametrize("field", ["infno", "msgid", "input"])
def test_parse_national_request_missing_field(field: str) -> None:
    raw = json.loads(_body())
    del raw[field]
    with pytest.raises(ValidationFailed) as exc:
        parse_national_request(json.dumps(raw).encode())
    assert exc.value.errors == [(field, "required")]


def test_parse_national_request_oversize_is_not_parsed() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_national_request(b"{" + b" " * 100 + b"}", max_bytes=50)
    assert exc.value.field == "body"
    assert "102 bytes" in exc.value.errors[0][1]


def test_parse_national_request_known_infnos_override() -> None:
    assert parse_national_request(_body(infno="H9201"), known_infnos={"H9201"}).infno == "H9201"
