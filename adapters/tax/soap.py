"""Lean SOAP 1.1 codec for the tax service (税务 统模式): lxml only, pure functions, no I/O.

Why a hand codec beside zeep: these messages are small and fixed, and building
and reading them with lxml directly is several times faster than zeep's generic
machinery (see ``bench/soap.py``), which matters on the hub's hot path. zeep
is a test and bench dependency only: ``tests/support/zeep_tax.py`` drives the WSDL
through it to prove that the WSDL and this codec agree.

Every parse function refuses hostile input the same way, because the same code
reads tax's answers, the simulator's requests and tax's callbacks to the hub:
a size cap before parsing, no DOCTYPE at all (so no entities, XXE or
billion-laughs), no network, no DTD loading. Malformed input raises
``ValidationFailed`` naming the element and the reason.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from copy import deepcopy
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from lxml import etree
from pydantic import ValidationError

from contracts.clock import BEIJING
from contracts.employee import EmployeeEnrollment, EmployeeStop, TaxAck, TaxFeedback
from contracts.envelope import ID_MAX_LENGTH, SERIAL_MAX_LENGTH
from contracts.errors import (
    BusinessRejected,
    ClientError,
    HubError,
    PartnerUnavailable,
    ValidationFailed,
)
from contracts.taxcat import OPS, op, to_wire

__all__ = [
    "CALLBACK_WSDL",
    "ENROLL_BODY_FIELDS",
    "MAX_BYTES",
    "NS",
    "OP_ENROLL",
    "OP_FEEDBACK",
    "OP_STOP",
    "PARTNER",
    "RET_OK",
    "SOAP_ACTION_ENROLL",
    "SOAP_ACTION_FEEDBACK",
    "SOAP_ACTION_STOP",
    "SOAP_CONTENT_TYPE",
    "SOAP_ENV",
    "STOP_BODY_FIELDS",
    "TAX_WSDL",
    "TAX_XSD",
    "build_ack",
    "build_enroll_request",
    "build_fault",
    "build_feedback_reply",
    "build_feedback_request",
    "build_query_reply",
    "build_reply",
    "build_request",
    "build_stop_request",
    "enroll_fields",
    "error_for_fault",
    "parse_ack",
    "parse_enroll_request",
    "parse_feedback_reply",
    "parse_feedback_request",
    "parse_payload",
    "parse_query_reply",
    "parse_reply",
    "parse_request",
    "parse_stop_request",
    "request_fields",
    "stop_fields",
]

NS: Final = "http://hub.njyb.gov.cn/tax/v1"
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_CONTENT_TYPE: Final = "text/xml; charset=utf-8"
OP_ENROLL: Final = "EmployeeEnroll"
OP_FEEDBACK: Final = "FeedbackNotify"
OP_STOP: Final = "EmployeeStop"
SOAP_ACTION_ENROLL: Final = f"{NS}/{OP_ENROLL}"
SOAP_ACTION_FEEDBACK: Final = f"{NS}/{OP_FEEDBACK}"
SOAP_ACTION_STOP: Final = f"{NS}/{OP_STOP}"
RET_OK: Final = "000000"
PARTNER: Final = "tax"
MAX_BYTES: Final = 1 << 20

_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "tax"
TAX_XSD: Final = _CONTRACTS / "tax.xsd"
TAX_WSDL: Final = _CONTRACTS / "tax.wsdl"
CALLBACK_WSDL: Final = _CONTRACTS / "hub_callback.wsdl"

#: Body of EmployeeEnrollRequest, in schema order.
ENROLL_BODY_FIELDS: Final[tuple[str, ...]] = (
    "shxydm", "dwmc", "zjlx", "zjhm", "xm", "xb", "csrq", "lxdh",
    "xzlx", "rylb", "ksjfny", "sbjbjgdm", "jfgz",
)
#: Body of EmployeeStopRequest, in schema order.
STOP_BODY_FIELDS: Final[tuple[str, ...]] = ("shxydm", "zjhm", "xm", "tbrq", "tbyy")
_HEAD_FIELDS: Final[tuple[str, ...]] = ("ywlsh", "fsfdm", "fssj", "serviceCode")
_REQUEST_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    o.name: tuple(f.xml for f in o.wire_fields) for o in OPS}
_OPTIONAL: Final[dict[str, frozenset[str]]] = {
    o.name: frozenset(f.xml for raw, f in zip(o.fields, o.wire_fields, strict=True)
                      if raw.startswith("?")) for o in OPS}
_LISTS: Final[dict[str, frozenset[str]]] = {
    o.name: frozenset(f.xml for f in o.wire_fields if f.kind == "idlist") for o in OPS}
#: Ops whose body is fixed (all required, no lists): built by copying a template (fast path).
_FIXED: Final = frozenset(n for n in _REQUEST_FIELDS if not _OPTIONAL[n] and not _LISTS[n])
_SERIAL = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{SERIAL_MAX_LENGTH}}}")
_SERIAL_CHARS = "A-Z a-z 0-9 _ . : -"
_SENDER = re.compile(r"^\S{1,20}$")

_Q_ENVELOPE: Final = f"{{{SOAP_ENV}}}Envelope"
_Q_BODY: Final = f"{{{SOAP_ENV}}}Body"
_Q_FAULT: Final = f"{{{SOAP_ENV}}}Fault"
_NSB: Final = f"{{{NS}}}"
_NSMAP: Final = {"soap-env": SOAP_ENV, "tax": NS}

_Status = Literal["accepted", "rejected"]
_CLZT_TO_STATUS: Final[dict[str, _Status]] = {"1": "accepted", "2": "rejected"}
_STATUS_TO_CLZT: Final[dict[str, str]] = {v: k for k, v in _CLZT_TO_STATUS.items()}
_FEEDBACK_XML_NAME: Final = {
    "accept_no": "slh", "biz_msg_id": "ywlsh", "operation": "serviceCode",
    "id_number": "zjhm", "status": "clzt", "reason_code": "yydm", "reason_text": "yysm",
}

_local = threading.local()


# ---------------------------------------------------------------- parsing core

def _parser() -> Any:
    """One hardened parser per thread: lxml parsers must not be shared between threads."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False,
        )
        _local.parser = parser
    return parser


def _refuse(element: str, reason: str) -> ValidationFailed:
    return ValidationFailed([(element, reason)])


def parse_payload(body: bytes, *, max_bytes: int = MAX_BYTES) -> Any:
    """Safely parse a SOAP 1.1 envelope and return the first element inside ``Body``.

    The size cap is checked before lxml sees a byte; a DOCTYPE anywhere is
    refused outright (checked on the raw bytes and again on the parsed
    document, which catches non-UTF-8 encodings).
    """
    if len(body) > max_bytes:
        raise _refuse("Envelope",
                      f"message of {len(body)} bytes exceeds the {max_bytes}-byte limit")
    if b"<!DOCTYPE" in body:
        raise _refuse("DOCTYPE", "document type declarations are refused (entity/XXE risk)")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise _refuse("Envelope", f"not well-formed XML: {exc.msg}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _refuse("DOCTYPE", "document type declarations are refused (entity/XXE risk)")
    if root.tag != _Q_ENVELOPE:
        raise _refuse("Envelope", f"root must be a SOAP 1.1 Envelope, got {root.tag}")
    soap_body = root.find(_Q_BODY)
    if soap_body is None:
        raise _refuse("Body", "missing SOAP Body")
    for child in soap_body:
        if isinstance(child.tag, str):
            return child
    raise _refuse("Body", "SOAP Body is empty")


def _local_name(tag: str) -> str:
    return tag[len(_NSB):] if tag.startswith(_NSB) else tag


def _children(element: Any) -> dict[str, Any]:
    """Direct children in the tax namespace, by local name (extensions elsewhere are skipped)."""
    out: dict[str, Any] = {}
    for child in element:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith(_NSB):
            out[tag[len(_NSB):]] = child
    return out


def _texts(element: Any, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, str]:
    """Text of named children; every missing or empty required child is reported at once."""
    kids = _children(element)
    out: dict[str, str] = {}
    errors: list[tuple[str, str]] = []
    for name in required:
        node = kids.get(name)
        text = (node.text or "").strip() if node is not None else ""
        if node is None:
            errors.append((name, "missing"))
        elif not text:
            errors.append((name, "empty"))
        else:
            out[name] = text
    for name in optional:
        node = kids.get(name)
        if node is not None:
            out[name] = (node.text or "").strip()
    if errors:
        raise ValidationFailed(errors)
    return out


def _expect(payload: Any, name: str) -> None:
    if payload.tag == _Q_FAULT:
        raise _refuse(name, "got a SOAP Fault instead")
    if payload.tag != _NSB + name:
        raise _refuse(name, f"expected {{{NS}}}{name}, got {payload.tag}")


# ---------------------------------------------------------------- building core

def _envelope() -> tuple[Any, Any]:
    env = etree.Element(_Q_ENVELOPE, nsmap=_NSMAP)
    return env, etree.SubElement(env, _Q_BODY)


def _add(parent: Any, name: str, value: str) -> None:
    try:
        etree.SubElement(parent, _NSB + name).text = value
    except ValueError:
        raise _refuse(name, "contains characters XML cannot carry") from None


def _check_serial(serial: str, limit: int = SERIAL_MAX_LENGTH) -> str:
    """A 业务流水号 as tax.xsd's ``Serial`` defines it, or a Client fault naming ``ywlsh``
    and the limit: refused here, before it becomes a causation id or a journal row."""
    if len(serial) > limit:
        raise _refuse("ywlsh", f"must be at most {limit} characters, got {len(serial)}")
    if not _SERIAL.fullmatch(serial):
        raise _refuse("ywlsh", f"must be 1-{limit} characters of {_SERIAL_CHARS}")
    return serial


def _add_all(parent: Any, fields: Mapping[str, str]) -> None:
    for name, value in fields.items():
        _add(parent, name, value)


def _serialize(envelope: Any) -> bytes:
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


# ---------------------------------------------------------------- EmployeeEnroll

def _head(operation: str, serial: str, sender: str,
          sent_at: datetime | None) -> dict[str, str]:
    """The TaxHead every request carries; a naive ``sent_at`` is taken as Beijing time."""
    _check_serial(serial)
    if not _SENDER.match(sender):
        raise _refuse("fsfdm", "must be 1-20 non-blank characters")
    ts = sent_at or datetime.now(BEIJING)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=BEIJING)
    return {
        "ywlsh": serial,
        "fsfdm": sender,
        "fssj": ts.isoformat(timespec="seconds"),
        "serviceCode": operation,
    }


def enroll_fields(req: EmployeeEnrollment, serial: str, sender: str = "NJYBHUB", *,
                  sent_at: datetime | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(head, body) wire values of 职工参保登记, shared by the lean and the zeep test clients.

    One mapping for both clients is what keeps their requests equivalent.
    A naive ``sent_at`` is taken as Beijing time.
    """
    head = _head(OP_ENROLL, serial, sender, sent_at)
    body = {
        "shxydm": req.unit_credit_code,
        "dwmc": req.unit_name,
        "zjlx": req.psn_cert_type,
        "zjhm": req.id_number,
        "xm": req.name,
        "xb": req.gender,
        "csrq": req.birth_date.isoformat(),
        "lxdh": req.phone,
        "xzlx": req.insutype,
        "rylb": req.psn_type,
        "ksjfny": req.start_month,
        "sbjbjgdm": req.admdvs,
        "jfgz": str(req.wage),
    }
    return head, body


def _template(operation: str) -> Any:
    """Empty ``{operation}Request`` envelope, built once: copying it is ~2x faster than building."""
    env, soap_body = _envelope()
    request = etree.SubElement(soap_body, f"{_NSB}{operation}Request")
    for part, names in (("head", _HEAD_FIELDS), ("body", _REQUEST_FIELDS[operation])):
        group = etree.SubElement(request, _NSB + part)
        for name in names:
            etree.SubElement(group, _NSB + name)
    return env


_TEMPLATES: Final = {name: _template(name) for name in _FIXED}


def _fill(group: Any, names: tuple[str, ...], values: Mapping[str, str]) -> None:
    for element, name in zip(group, names, strict=True):
        try:
            element.text = values[name]
        except ValueError:
            raise _refuse(name, "contains characters XML cannot carry") from None


def build_enroll_request(req: EmployeeEnrollment, serial: str, sender: str = "NJYBHUB", *,
                         sent_at: datetime | None = None) -> bytes:
    """SOAP request of EmployeeEnroll; pass ``sent_at`` for byte-stable output (fixtures)."""
    head, body = enroll_fields(req, serial, sender, sent_at=sent_at)
    return _build(OP_ENROLL, head, body)


def _build(operation: str, head: Mapping[str, str],
           body: Mapping[str, str | list[str]]) -> bytes:
    if operation not in _FIXED:
        return _build_dynamic(operation, head, body)
    env = deepcopy(_TEMPLATES[operation])
    request = env[0][0]
    _fill(request[0], _HEAD_FIELDS, head)
    _fill(request[1], _REQUEST_FIELDS[operation], body)  # type: ignore[arg-type]
    return _serialize(env)


def _build_dynamic(operation: str, head: Mapping[str, str],
                   body: Mapping[str, str | list[str]]) -> bytes:
    """Bodies with optional or repeated elements: absent optionals are left out."""
    env, soap_body = _envelope()
    request = etree.SubElement(soap_body, f"{_NSB}{operation}Request")
    _add_all(etree.SubElement(request, _NSB + "head"), head)
    group = etree.SubElement(request, _NSB + "body")
    missing = [(n, "missing") for n in _REQUEST_FIELDS[operation]
               if n not in body and n not in _OPTIONAL[operation]]
    if missing:
        raise ValidationFailed(missing)
    for name in _REQUEST_FIELDS[operation]:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, list):
            holder = etree.SubElement(group, _NSB + name)
            for item in value:
                _add(holder, "zjhm", item)
        else:
            _add(group, name, value)
    return _serialize(env)


def _parse_request_payload(payload: Any,
                           operation: str) -> tuple[str, dict[str, Any]]:
    _expect(payload, f"{operation}Request")
    kids = _children(payload)
    errors = [(part, "missing") for part in ("head", "body") if part not in kids]
    if errors:
        raise ValidationFailed(errors)
    head = _texts(kids["head"], _HEAD_FIELDS)
    if head["serviceCode"] != operation:
        raise _refuse("serviceCode", f"must be {operation}, got {head['serviceCode']}")
    _check_serial(head["ywlsh"])
    names = _REQUEST_FIELDS[operation]
    optional, lists = _OPTIONAL[operation], _LISTS[operation]
    if not optional and not lists:
        return head["ywlsh"], _texts(kids["body"], names)
    scalars = [n for n in names if n not in lists]
    fields: dict[str, Any] = _texts(kids["body"], [n for n in scalars if n not in optional],
                                    [n for n in scalars if n in optional])
    body_kids = _children(kids["body"])
    for name in lists:
        holder = body_kids.get(name)
        if holder is not None:
            fields[name] = [(c.text or "").strip() for c in holder
                            if isinstance(c.tag, str) and c.tag == _NSB + "zjhm"]
        elif name not in optional:
            raise _refuse(name, "missing")
    return head["ywlsh"], {k: v for k, v in fields.items() if v != ""}


def parse_enroll_request(body: bytes, *, max_bytes: int = MAX_BYTES) -> tuple[str, dict[str, str]]:
    """(ywlsh, body fields by pinyin name) of an EmployeeEnroll request: the simulator's reader.

    Only presence is checked here; the simulator validates against tax.xsd as well.
    """
    return _parse_request_payload(parse_payload(body, max_bytes=max_bytes), OP_ENROLL)


def parse_request(body: bytes, *, max_bytes: int = MAX_BYTES,
                  kinds: Iterable[str] = ("submit", "query"),
                  ) -> tuple[str, str, dict[str, Any]]:
    """(operation, ywlsh, body fields) of a catalogue request of one of ``kinds``.

    Tax's side reads submits and queries; the hub's callback reads pushes and
    core queries. A list element (``zjhmlb``) comes back as a list of strings.
    """
    payload = parse_payload(body, max_bytes=max_bytes)
    name = _local_name(payload.tag) if isinstance(payload.tag, str) else ""
    operation = name.removesuffix("Request")
    allowed = set(kinds)
    if (operation not in _REQUEST_FIELDS or not name.endswith("Request")
            or op(operation).kind not in allowed):
        raise _refuse("Body", f"unknown request {payload.tag} for this service (kinds "
                              f"{', '.join(sorted(allowed))}; see contracts/tax/CATALOGUE.md)")
    return (operation, *_parse_request_payload(payload, operation))


# ---------------------------------------------------------------- EmployeeStop

def stop_fields(req: EmployeeStop, serial: str, sender: str = "NJYBHUB", *,
                sent_at: datetime | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(head, body) wire values of 职工暂停/终止参保 (lean and zeep test clients)."""
    head = _head(OP_STOP, serial, sender, sent_at)
    body = {
        "shxydm": req.unit_credit_code,
        "zjhm": req.id_number,
        "xm": req.name,
        "tbrq": req.stop_date.isoformat(),
        "tbyy": req.reason_code,
    }
    return head, body


def build_stop_request(req: EmployeeStop, serial: str, sender: str = "NJYBHUB", *,
                       sent_at: datetime | None = None) -> bytes:
    """SOAP request of EmployeeStop; the answer is a 受理回执 read by ``parse_ack``."""
    head, body = stop_fields(req, serial, sender, sent_at=sent_at)
    return _build(OP_STOP, head, body)


def parse_stop_request(body: bytes, *, max_bytes: int = MAX_BYTES) -> tuple[str, dict[str, str]]:
    """(ywlsh, body fields by pinyin name) of an EmployeeStop request (presence only)."""
    return _parse_request_payload(parse_payload(body, max_bytes=max_bytes), OP_STOP)


# ---------------------------------------------------------------- any catalogue operation

def request_fields(operation: str, payload: Any, serial: str, sender: str = "NJYBHUB", *,
                   sent_at: datetime | None = None,
                   ) -> tuple[dict[str, str], dict[str, str | list[str]]]:
    """(head, body) wire values of any catalogue operation, from its canonical payload."""
    return _head(operation, serial, sender, sent_at), to_wire(op(operation), payload)


def build_request(operation: str, payload: Any, serial: str, sender: str = "NJYBHUB", *,
                  sent_at: datetime | None = None) -> bytes:
    """SOAP request of any catalogue operation (submit, query, push or core query)."""
    head, body = request_fields(operation, payload, serial, sender, sent_at=sent_at)
    return _build(operation, head, body)


def build_reply(operation: str, ok: bool, code: str | None = None, msg: str = "") -> bytes:
    """A plain ``{operation}Response`` (TaxReplyType): the answer to a push."""
    env, soap_body = _envelope()
    reply = etree.SubElement(soap_body, f"{_NSB}{operation}Response")
    _add_all(reply, {"retStatus": "S" if ok else "F",
                     "retCode": code or (RET_OK if ok else "999999"), "retMsg": msg})
    return _serialize(env)


def parse_reply(body: bytes, *, max_bytes: int = MAX_BYTES) -> tuple[bool, str, str]:
    """(ok, retCode, retMsg) of a plain reply; a Fault raises the matching hub error."""
    payload = parse_payload(body, max_bytes=max_bytes)
    if payload.tag == _Q_FAULT:
        _raise_fault(payload)
    f = _texts(payload, ("retStatus",), ("retCode", "retMsg"))
    return f["retStatus"] == "S", f.get("retCode", ""), f.get("retMsg", "")


def build_query_reply(operation: str, records: Iterable[Mapping[str, Any]], *,
                      ok: bool = True, code: str | None = None, msg: str = "") -> bytes:
    """``{operation}Response`` with ``records/record`` rows (canonical names -> elements)."""
    o = op(operation)
    env, soap_body = _envelope()
    reply = etree.SubElement(soap_body, f"{_NSB}{operation}Response")
    _add_all(reply, {"retStatus": "S" if ok else "F",
                     "retCode": code or (RET_OK if ok else "999999"), "retMsg": msg})
    holder = etree.SubElement(reply, _NSB + "records")
    for record in records:
        row = etree.SubElement(holder, _NSB + "record")
        for f in o.reply_fields:
            value = record.get(f.attr)
            if value is not None:
                _add(row, f.xml, str(value))
    return _serialize(env)


def parse_query_reply(operation: str, body: bytes, *,
                      max_bytes: int = MAX_BYTES) -> list[dict[str, str]]:
    """Records of a query answer, by canonical name; F raises BusinessRejected."""
    o = op(operation)
    payload = parse_payload(body, max_bytes=max_bytes)
    if payload.tag == _Q_FAULT:
        _raise_fault(payload)
    _expect(payload, f"{operation}Response")
    f = _texts(payload, ("retStatus", "retCode"), ("retMsg",))
    if f["retStatus"] == "F":
        raise BusinessRejected(f["retCode"], f.get("retMsg", ""), partner=PARTNER)
    by_xml = {w.xml: w.attr for w in o.reply_fields}
    holder = _children(payload).get("records")
    rows: list[dict[str, str]] = []
    for record in holder if holder is not None else ():
        if not isinstance(record.tag, str):
            continue
        rows.append({by_xml[k]: (v.text or "").strip()
                     for k, v in _children(record).items() if k in by_xml})
    return rows


# ---------------------------------------------------------------- acknowledgement

def build_ack(ret_status: Literal["S", "F"], ret_code: str, ret_msg: str = "",
              accept_no: str | None = None, *, operation: str = OP_ENROLL) -> bytes:
    """Tax's synchronous 受理回执 (``{operation}Response``); ``accept_no`` only when accepted."""
    env, soap_body = _envelope()
    ack = etree.SubElement(soap_body, f"{_NSB}{operation}Response")
    _add_all(ack, {"retStatus": ret_status, "retCode": ret_code, "retMsg": ret_msg})
    if accept_no:
        _add(ack, "slh", accept_no)
    return _serialize(env)


def error_for_fault(faultcode: str, faultstring: str) -> HubError:
    """SOAP 1.1 fault -> hub error: Client (and VersionMismatch/MustUnderstand) is permanent.

    Anything else, Server included, is transient: the partner may succeed later.
    """
    local = (faultcode or "").rpartition(":")[2]
    reason = f"SOAP fault {local or '?'}: {faultstring or 'no faultstring'}"
    if local.startswith(("Client", "VersionMismatch", "MustUnderstand")):
        return ClientError(reason, partner=PARTNER)
    return PartnerUnavailable(reason, partner=PARTNER)


def _raise_fault(payload: Any) -> None:
    code = payload.findtext("faultcode") or payload.findtext(f"{{{SOAP_ENV}}}faultcode") or ""
    text = payload.findtext("faultstring") or payload.findtext(f"{{{SOAP_ENV}}}faultstring") or ""
    raise error_for_fault(code.strip(), text.strip())


def parse_ack(body: bytes, *, max_bytes: int = MAX_BYTES) -> TaxAck:
    """Read a 受理回执; a Fault or ``retStatus`` F raises the matching hub error."""
    payload = parse_payload(body, max_bytes=max_bytes)
    if payload.tag == _Q_FAULT:
        _raise_fault(payload)
    if not (isinstance(payload.tag, str) and payload.tag.startswith(_NSB)
            and payload.tag.endswith("Response")):
        raise _refuse("Response", f"expected a tax *Response element, got {payload.tag}")
    f = _texts(payload, ("retStatus", "retCode"), ("retMsg", "slh"))
    status = f["retStatus"]
    if status == "F":
        raise BusinessRejected(f["retCode"], f.get("retMsg", ""), partner=PARTNER)
    if status != "S":
        raise _refuse("retStatus", f"must be S or F, got {status!r}")
    if not f.get("slh"):
        raise _refuse("slh", "missing on an accepted (S) acknowledgement")
    return TaxAck(accept_no=f["slh"], ret_code=f["retCode"], ret_msg=f.get("retMsg", ""))


def build_fault(code: Literal["Client", "Server"], message: str) -> bytes:
    """A SOAP 1.1 Fault (sent with HTTP 500): Client = do not retry, Server = retry later."""
    env, soap_body = _envelope()
    fault = etree.SubElement(soap_body, _Q_FAULT)
    etree.SubElement(fault, "faultcode").text = f"soap-env:{code}"
    etree.SubElement(fault, "faultstring").text = message
    return _serialize(env)


# ---------------------------------------------------------------- FeedbackNotify

def build_feedback_request(fb: TaxFeedback) -> bytes:
    """Tax -> hub 受理结果反馈 (used by the simulator and by fixtures)."""
    env, soap_body = _envelope()
    req = etree.SubElement(soap_body, _NSB + "FeedbackNotifyRequest")
    _add_all(req, {"slh": fb.accept_no, "ywlsh": fb.biz_msg_id, "serviceCode": fb.operation})
    if fb.id_number:
        _add(req, "zjhm", fb.id_number)
    _add(req, "clzt", _STATUS_TO_CLZT[fb.status])
    if fb.reason_code:
        _add(req, "yydm", fb.reason_code)
    if fb.reason_text:
        _add(req, "yysm", fb.reason_text)
    return _serialize(env)


def parse_feedback_request(body: bytes, *, max_bytes: int = MAX_BYTES) -> TaxFeedback:
    """Read tax's callback; every problem names the XML element (not the Python field)."""
    payload = parse_payload(body, max_bytes=max_bytes)
    _expect(payload, "FeedbackNotifyRequest")
    f = _texts(payload, ("slh", "ywlsh", "serviceCode", "clzt"), ("zjhm", "yydm", "yysm"))
    # The echo of a serial the hub sent (32 hex, or a student batch's chunk serial): it
    # becomes the feedback's correlation id, so it is held to that id's limit.
    _check_serial(f["ywlsh"], ID_MAX_LENGTH)
    status = _CLZT_TO_STATUS.get(f["clzt"])
    if status is None:
        raise _refuse("clzt", f"must be 1 (accepted) or 2 (rejected), got {f['clzt']!r}")
    try:
        return TaxFeedback(
            accept_no=f["slh"], biz_msg_id=f["ywlsh"], operation=f["serviceCode"],
            id_number=f.get("zjhm", ""), status=status,
            reason_code=f.get("yydm", ""), reason_text=f.get("yysm", ""),
        )
    except ValidationError as exc:
        raise ValidationFailed([
            (_FEEDBACK_XML_NAME.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"] else
             "FeedbackNotifyRequest", e["msg"])
            for e in exc.errors()
        ]) from None


def build_feedback_reply(ok: bool, msg: str = "", code: str | None = None) -> bytes:
    """The hub's answer to FeedbackNotify: S only once the feedback is safely published."""
    env, soap_body = _envelope()
    reply = etree.SubElement(soap_body, _NSB + "FeedbackNotifyResponse")
    _add_all(reply, {
        "retStatus": "S" if ok else "F",
        "retCode": code or (RET_OK if ok else "999999"),
        "retMsg": msg,
    })
    return _serialize(env)


def parse_feedback_reply(body: bytes, *, max_bytes: int = MAX_BYTES) -> tuple[bool, str]:
    """(ok, retMsg) of the hub's answer: the simulator retries until ok."""
    payload = parse_payload(body, max_bytes=max_bytes)
    if payload.tag == _Q_FAULT:
        return False, (payload.findtext("faultstring") or "SOAP fault").strip()
    _expect(payload, "FeedbackNotifyResponse")
    f = _texts(payload, ("retStatus",), ("retCode", "retMsg"))
    return f["retStatus"] == "S", f.get("retMsg", "")
