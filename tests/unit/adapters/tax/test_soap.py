"""The lean tax SOAP codec: roundtrips, schema validity, hostile XML, error mapping."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from lxml import etree

from adapters.tax import soap
from contracts.clock import BEIJING
from contracts.employee import EmployeeEnrollment, EmployeeStop, TaxAck, TaxFeedback
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerUnavailable,
    PermanentError,
    TransientError,
    ValidationFailed,
)

FIXTURES = soap.TAX_XSD.parents[1] / "fixtures" / "tax" / "employee_enroll"
SENT_AT = datetime(2025, 1, 15, 9, 30, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(soap.TAX_XSD)))


@pytest.fixture
def req() -> EmployeeEnrollment:
    return EmployeeEnrollment.model_validate_json((FIXTURES / "001_ok.input.json").read_text())


def feedback(**kw: object) -> TaxFeedback:
    base: dict[str, object] = dict(accept_no="SL202501150000000001", biz_msg_id="msg-1",
                                   operation="EmployeeEnroll", id_number="320102199005061234",
                                   status="accepted", reason_code="", reason_text="参保登记成功")
    return TaxFeedback(**{**base, **kw})  # type: ignore[arg-type]


# ------------------------------------------------------------------ request

def test_enroll_request_roundtrip(req: EmployeeEnrollment) -> None:
    body = soap.build_enroll_request(req, "SER-1", sent_at=SENT_AT)
    serial, fields = soap.parse_enroll_request(body)
    assert serial == "SER-1"
    assert fields == {
        "shxydm": req.unit_credit_code, "dwmc": req.unit_name, "zjlx": "01",
        "zjhm": req.id_number, "xm": req.name, "xb": req.gender,
        "csrq": req.birth_date.isoformat(), "lxdh": req.phone, "xzlx": "310", "rylb": "11",
        "ksjfny": req.start_month, "sbjbjgdm": req.admdvs, "jfgz": "0",
    }
    assert list(fields) == list(soap.ENROLL_BODY_FIELDS)


def test_enroll_request_validates_against_xsd(req: EmployeeEnrollment,
                                              schema: etree.XMLSchema) -> None:
    body = soap.build_enroll_request(req, "tax.employee_enroll:" + "a" * 32)
    assert schema.validate(soap.parse_payload(body)), schema.error_log


def test_naive_sent_at_is_beijing_time(req: EmployeeEnrollment) -> None:
    body = soap.build_enroll_request(req, "S1", sent_at=datetime(2025, 1, 15, 9, 30))
    assert b"<tax:fssj>2025-01-15T09:30:00+08:00</tax:fssj>" in body


@pytest.mark.parametrize("serial", ["", "a" * 81, "has space", "中文"])
def test_bad_serial_is_refused(req: EmployeeEnrollment, serial: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.build_enroll_request(req, serial)
    assert e.value.field == "ywlsh"


def test_characters_xml_cannot_carry_name_the_field(req: EmployeeEnrollment) -> None:
    bad = req.model_copy(update={"unit_name": "南京\x01公司"})
    with pytest.raises(ValidationFailed) as e:
        soap.build_enroll_request(bad, "S1")
    assert e.value.field == "dwmc"


def test_missing_body_fields_are_all_named(req: EmployeeEnrollment) -> None:
    body = soap.build_enroll_request(req, "S1", sent_at=SENT_AT)
    body = body.replace(b"<tax:xm>" + req.name.encode() + b"</tax:xm>", b"")
    body = body.replace(b"<tax:lxdh>" + req.phone.encode() + b"</tax:lxdh>", b"<tax:lxdh/>")
    with pytest.raises(ValidationFailed) as e:
        soap.parse_enroll_request(body)
    assert e.value.errors == [("xm", "missing"), ("lxdh", "empty")]


def test_wrong_operation_is_refused(req: EmployeeEnrollment) -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.parse_enroll_request(soap.build_feedback_request(feedback()))
    assert e.value.field == "EmployeeEnrollRequest"


# ------------------------------------------------------------------ ack and faults

def test_ack_roundtrip(schema: etree.XMLSchema) -> None:
    body = soap.build_ack("S", "000000", "受理成功", "SL1")
    assert schema.validate(soap.parse_payload(body))
    assert soap.parse_ack(body) == TaxAck(accept_no="SL1", ret_code="000000", ret_msg="受理成功")


def test_ack_f_is_business_rejection() -> None:
    with pytest.raises(BusinessRejected) as e:
        soap.parse_ack(soap.build_ack("F", "TX101", "不是南京市区划"))
    assert (e.value.reason_code, e.value.reason_text) == ("TX101", "不是南京市区划")
    assert isinstance(e.value, PermanentError) and e.value.partner == "tax"


def test_accepted_ack_without_slh_is_invalid() -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.parse_ack(soap.build_ack("S", "000000", "ok"))
    assert e.value.field == "slh"


@pytest.mark.parametrize(("code", "error", "kind"), [
    ("Client", ClientError, PermanentError),
    ("Server", PartnerUnavailable, TransientError),
])
def test_fault_mapping(code: str, error: type[Exception], kind: type[Exception]) -> None:
    with pytest.raises(error) as e:
        soap.parse_ack(soap.build_fault(code, "boom"))  # type: ignore[arg-type]
    assert isinstance(e.value, kind)
    assert "boom" in str(e.value)


@pytest.mark.parametrize(("faultcode", "error"), [
    ("soapenv:Client.Authentication", ClientError),
    ("VersionMismatch", ClientError),
    ("s:Server.Busy", PartnerUnavailable),
    ("", PartnerUnavailable),
])
def test_error_for_fault_variants(faultcode: str, error: type[Exception]) -> None:
    assert isinstance(soap.error_for_fault(faultcode, "x"), error)


# ------------------------------------------------------------------ feedback

@pytest.mark.parametrize("fb", [
    feedback(),
    feedback(status="rejected", reason_code="TX201",
             reason_text="该人员在其他单位存在有效参保记录"),
    feedback(id_number="", reason_text=""),
])
def test_feedback_roundtrip(fb: TaxFeedback, schema: etree.XMLSchema) -> None:
    body = soap.build_feedback_request(fb)
    assert schema.validate(soap.parse_payload(body)), schema.error_log
    assert soap.parse_feedback_request(body) == fb


def test_feedback_reply_roundtrip(schema: etree.XMLSchema) -> None:
    ok = soap.build_feedback_reply(True, "已接收")
    bad = soap.build_feedback_reply(False, "broker down", code="HUB503")
    assert schema.validate(soap.parse_payload(ok)) and schema.validate(soap.parse_payload(bad))
    assert soap.parse_feedback_reply(ok) == (True, "已接收")
    assert soap.parse_feedback_reply(bad) == (False, "broker down")
    assert soap.parse_feedback_reply(soap.build_fault("Server", "x")) == (False, "x")


def _feedback_xml(inner: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<s:Envelope xmlns:s="{soap.SOAP_ENV}" xmlns:t="{soap.NS}"><s:Body>'
            f"<t:FeedbackNotifyRequest>{inner}</t:FeedbackNotifyRequest></s:Body></s:Envelope>"
            ).encode()


@pytest.mark.parametrize(("inner", "field", "reason"), [
    ("<t:ywlsh>m</t:ywlsh><t:serviceCode>EmployeeEnroll</t:serviceCode><t:clzt>1</t:clzt>",
     "slh", "missing"),
    ("<t:slh>SL1</t:slh><t:ywlsh>m</t:ywlsh><t:serviceCode>EmployeeEnroll</t:serviceCode>"
     "<t:clzt>3</t:clzt>", "clzt", "must be 1"),
    ("<t:slh>SL1</t:slh><t:ywlsh>m</t:ywlsh><t:serviceCode>EmployeeEnroll</t:serviceCode>"
     "<t:clzt>1</t:clzt><t:zjhm>" + "1" * 19 + "</t:zjhm>", "zjhm", "at most 18"),
    ("<t:slh>SL1</t:slh><t:ywlsh></t:ywlsh><t:serviceCode>E</t:serviceCode><t:clzt>1</t:clzt>",
     "ywlsh", "empty"),
])
def test_malformed_feedback_names_the_element(inner: str, field: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.parse_feedback_request(_feedback_xml(inner))
    assert e.value.field == field
    assert reason in e.value.reason


def test_feedback_not_xml_is_validation_failed() -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.parse_feedback_request(b"<not-closed")
    assert e.value.field == "Envelope"
    assert "well-formed" in e.value.reason


def test_feedback_not_soap_is_validation_failed() -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.parse_feedback_request(b"<FeedbackNotifyRequest/>")
    assert e.value.field == "Envelope"


# ------------------------------------------------------------------ hostile XML

XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
       + _feedback_xml("<t:slh>&xxe;</t:slh>").split(b"?>", 1)[1])
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
          b"<lolz>&lol2;</lolz>")


@pytest.mark.parametrize("body", [XXE, LAUGHS,
                                  XXE.decode().replace('version="1.0"?>', 'version="1.0" '
                                                       'encoding="UTF-16"?>').encode("utf-16")],
                         ids=["xxe", "billion-laughs", "utf16-doctype"])
@pytest.mark.parametrize("parse", [soap.parse_feedback_request, soap.parse_ack,
                                   soap.parse_enroll_request, soap.parse_feedback_reply,
                                   soap.parse_stop_request, soap.parse_request])
def test_doctype_is_refused_everywhere(parse: object, body: bytes) -> None:
    with pytest.raises(ValidationFailed) as e:
        parse(body)  # type: ignore[operator]
    assert e.value.field == "DOCTYPE"


def test_oversize_is_refused_before_parsing(req: EmployeeEnrollment) -> None:
    body = soap.build_enroll_request(req, "S1")
    with pytest.raises(ValidationFailed) as e:
        soap.parse_enroll_request(body, max_bytes=len(body) - 1)
    assert "limit" in e.value.reason
    assert soap.parse_enroll_request(body, max_bytes=len(body))[0] == "S1"
    huge = b"<a>" + b" " * (soap.MAX_BYTES + 1) + b"</a>"
    with pytest.raises(ValidationFailed, match="1048576-byte limit"):
        soap.parse_ack(huge)


def test_extensions_in_other_namespaces_are_skipped(schema: etree.XMLSchema) -> None:
    body = soap.build_ack("S", "000000", "ok", "SL9").replace(
        b"</tax:EmployeeEnrollResponse>",
        b'<x:trace xmlns:x="urn:example:ext">abc</x:trace></tax:EmployeeEnrollResponse>')
    assert schema.validate(soap.parse_payload(body)), schema.error_log
    assert soap.parse_ack(body).accept_no == "SL9"


# ------------------------------------------------------------------ EmployeeStop

@pytest.fixture
def stop(req: EmployeeEnrollment) -> EmployeeStop:
    return EmployeeStop(unit_credit_code=req.unit_credit_code, id_number=req.id_number,
                        name=req.name, stop_date=date(2025, 3, 31), reason_code="02")


def test_stop_request_roundtrip_and_xsd(stop: EmployeeStop, schema: etree.XMLSchema) -> None:
    body = soap.build_stop_request(stop, "SER-STOP-1", sent_at=SENT_AT)
    assert schema.validate(soap.parse_payload(body)), schema.error_log
    serial, fields = soap.parse_stop_request(body)
    assert serial == "SER-STOP-1"
    assert fields == {"shxydm": stop.unit_credit_code, "zjhm": stop.id_number,
                      "xm": stop.name, "tbrq": "2025-03-31", "tbyy": "02"}
    assert list(fields) == list(soap.STOP_BODY_FIELDS)
    assert b"<tax:serviceCode>EmployeeStop</tax:serviceCode>" in body
    assert b"<tax:fssj>2025-01-15T09:30:00+08:00</tax:fssj>" in body


def test_parse_request_dispatches_on_the_operation(req: EmployeeEnrollment,
                                                   stop: EmployeeStop) -> None:
    op, serial, fields = soap.parse_request(soap.build_stop_request(stop, "S2"))
    assert (op, serial, fields["tbrq"]) == (soap.OP_STOP, "S2", "2025-03-31")
    op, serial, fields = soap.parse_request(soap.build_enroll_request(req, "S1"))
    assert (op, serial, fields["zjhm"]) == (soap.OP_ENROLL, "S1", req.id_number)
    with pytest.raises(ValidationFailed) as e:
        soap.parse_request(soap.build_feedback_request(feedback()))
    assert e.value.field == "Body" and "FeedbackNotifyRequest" in e.value.reason


def test_stop_is_not_an_enroll(req: EmployeeEnrollment, stop: EmployeeStop) -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.parse_enroll_request(soap.build_stop_request(stop, "S1"))
    assert e.value.field == "EmployeeEnrollRequest"
    with pytest.raises(ValidationFailed) as e:
        soap.parse_stop_request(soap.build_enroll_request(req, "S1"))
    assert e.value.field == "EmployeeStopRequest"


def test_stop_service_code_must_match(stop: EmployeeStop) -> None:
    body = soap.build_stop_request(stop, "S1").replace(
        b">EmployeeStop</tax:serviceCode>", b">EmployeeEnroll</tax:serviceCode>")
    with pytest.raises(ValidationFailed) as e:
        soap.parse_stop_request(body)
    assert e.value.field == "serviceCode"


@pytest.mark.parametrize(("old", "new"), [
    (b"<tax:tbrq>2025-03-31</tax:tbrq>", b"<tax:tbrq>2025-02-30</tax:tbrq>"),
    (b"<tax:tbrq>2025-03-31</tax:tbrq>", b"<tax:tbrq>20250331</tax:tbrq>"),
    (b"<tax:tbyy>02</tax:tbyy>", b"<tax:tbyy>2</tax:tbyy>"),
    (b"<tax:tbyy>02</tax:tbyy>", b""),
], ids=["impossible-date", "compact-date", "one-digit-reason", "no-reason"])
def test_xsd_refuses_bad_stop_bodies(stop: EmployeeStop, schema: etree.XMLSchema,
                                     old: bytes, new: bytes) -> None:
    body = soap.build_stop_request(stop, "S1", sent_at=SENT_AT)
    assert old in body
    assert not schema.validate(soap.parse_payload(body.replace(old, new)))


def test_stop_refuses_a_bad_serial(stop: EmployeeStop) -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.build_stop_request(stop, "has space")
    assert e.value.field == "ywlsh"


def test_stop_ack_is_read_by_parse_ack(schema: etree.XMLSchema) -> None:
    ok = soap.build_ack("S", "000000", "受理成功", "SL7", operation=soap.OP_STOP)
    assert b"EmployeeStopResponse" in ok and schema.validate(soap.parse_payload(ok))
    assert soap.parse_ack(ok).accept_no == "SL7"
    with pytest.raises(BusinessRejected) as e:
        soap.parse_ack(soap.build_ack("F", "TX301", "无有效参保", operation=soap.OP_STOP))
    assert e.value.reason_code == "TX301"
