"""大学生批量参保/暂停 over SOAP: the lean lxml codec (both directions) and the client.

One chunk of at most 1000 rows per call; tax answers per row in the same
response (no FeedbackNotify), because a university wants its split into
success / failure / 困难人员 while the batch is running. The serial ``ywlsh``
is ``f"{batch_id}-{chunk_no}"``, so a retried chunk is deduplicated by tax and
gets its first answer again.

Parsing reuses ``soap.parse_payload`` (size cap before parsing, DOCTYPE
refused, no entities or network); malformed input raises ``ValidationFailed``
naming the element. The client maps failures at this boundary exactly like
``client.LeanTaxClient``:

    httpx timeout                      -> PartnerTimeout
    connect/reset, HTTP 5xx/429/408    -> PartnerUnavailable
    SOAP Server fault                  -> PartnerUnavailable
    HTTP 4xx, SOAP Client fault        -> ClientError
    retStatus F (whole chunk refused)  -> BusinessRejected(retCode, retMsg)
    unreadable answer                  -> PartnerUnavailable (a retry is safe: same ywlsh)
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol

import httpx
from lxml import etree

from adapters.http import bounded_client
from adapters.tax.client import _read_capped, error_for_status, map_httpx_error
from adapters.tax.soap import (
    NS,
    PARTNER,
    RET_OK,
    SOAP_CONTENT_TYPE,
    SOAP_ENV,
    _add,
    _children,
    _envelope,
    _head,
    _serialize,
    _texts,
    error_for_fault,
    parse_payload,
)
from contracts.errors import BusinessRejected, HubError, PartnerUnavailable, ValidationFailed
from contracts.student_batch import (
    MAX_CHUNK_ROWS,
    BatchOp,
    RowResult,
    RowStatus,
    StudentEnrollRow,
    StudentRow,
    StudentStopRow,
)

__all__ = [
    "BATCH_MAX_BYTES",
    "ENROLL_ROW_FIELDS",
    "OPERATIONS",
    "OP_BATCH_ENROLL",
    "OP_BATCH_STOP",
    "SOAP_ACTION_BATCH_ENROLL",
    "SOAP_ACTION_BATCH_STOP",
    "STOP_ROW_FIELDS",
    "STUDENT_BATCH_XSD",
    "BatchRequest",
    "StudentBatchClient",
    "StudentBatchPort",
    "build_batch_request",
    "build_batch_response",
    "enroll_row_fields",
    "op_of",
    "parse_batch_request",
    "parse_batch_response",
    "serial_for",
    "stop_row_fields",
]

OP_BATCH_ENROLL: Final = "StudentBatchEnroll"
OP_BATCH_STOP: Final = "StudentBatchStop"
OPERATIONS: Final[dict[BatchOp, str]] = {"enroll": OP_BATCH_ENROLL, "stop": OP_BATCH_STOP}
SOAP_ACTION_BATCH_ENROLL: Final = f"{NS}/{OP_BATCH_ENROLL}"
SOAP_ACTION_BATCH_STOP: Final = f"{NS}/{OP_BATCH_STOP}"
BATCH_MAX_BYTES: Final = 4 << 20
"""A full 1000-row chunk is about 0.6 MB; the cap leaves room and still bounds memory."""
STUDENT_BATCH_XSD: Final = Path(__file__).resolve().parents[2] / "contracts" / "tax" / \
    "student_batch.xsd"

#: Row elements in schema order (``knrylb`` and ``bz`` optional).
ENROLL_ROW_FIELDS: Final = ("xh", "zjhm", "xm", "xb", "csrq", "lxdh", "yxdm", "yxmc", "xsxh",
                            "rxny", "cbnd", "jcybqh", "knrylb")
STOP_ROW_FIELDS: Final = ("xh", "zjhm", "xm", "tbrq", "tbyy", "bz")
_OPTIONAL: Final = frozenset({"knrylb", "bz"})
_ROW_FIELDS: Final[dict[BatchOp, tuple[str, ...]]] = {
    "enroll": ENROLL_ROW_FIELDS, "stop": STOP_ROW_FIELDS}
_BODY_FIELDS: Final = ("pch", "fkxh", "fkzs", "hs")
_HEAD_FIELDS: Final = ("ywlsh", "fsfdm", "fssj", "serviceCode")
_RESULT_FIELDS: Final = ("xh", "zjhm", "jg", "yydm", "yysm")
_JG_TO_STATUS: Final[dict[str, RowStatus]] = {"1": "success", "2": "failure", "3": "difficulty"}
_STATUS_TO_JG: Final[dict[RowStatus, str]] = {v: k for k, v in _JG_TO_STATUS.items()}
_NSB: Final = f"{{{NS}}}"
_Q_FAULT: Final = f"{{{SOAP_ENV}}}Fault"


def _refuse(element: str, reason: str) -> ValidationFailed:
    return ValidationFailed([(element, reason)])


def serial_for(batch_id: str, chunk_no: int) -> str:
    """业务流水号 of one chunk: stable across retries, so tax deduplicates a resend."""
    return f"{batch_id}-{chunk_no}"


def op_of(name: str) -> BatchOp:
    """``enroll``/``stop`` from an operation name, a SOAPAction (quoted or not) or an element."""
    local = name.strip().strip('"').rpartition("/")[2].rpartition("}")[2]
    local = local.removesuffix("Request").removesuffix("Response")
    for op, operation in OPERATIONS.items():
        if local in (op, operation):
            return op
    raise _refuse("serviceCode", f"not a student batch operation: {name!r}")


# ---------------------------------------------------------------- rows <-> wire

def enroll_row_fields(row_no: int, row: StudentEnrollRow) -> dict[str, str]:
    """Wire values of one 大学生批量参保 row (pinyin names, schema order)."""
    out = {
        "xh": str(row_no), "zjhm": row.id_number, "xm": row.name, "xb": row.gender,
        "csrq": row.birth_date.isoformat(), "lxdh": row.phone, "yxdm": row.school_code,
        "yxmc": row.school_name, "xsxh": row.student_no, "rxny": row.enroll_month,
        "cbnd": row.insure_year, "jcybqh": row.community,
    }
    if row.difficulty_type:
        out["knrylb"] = row.difficulty_type
    return out


def stop_row_fields(row_no: int, row: StudentStopRow) -> dict[str, str]:
    """Wire values of one 大学生批量暂停 row."""
    out = {"xh": str(row_no), "zjhm": row.id_number, "xm": row.name,
           "tbrq": row.stop_date.isoformat(), "tbyy": row.stop_reason}
    if row.remark:
        out["bz"] = row.remark
    return out


def _row_fields(op: BatchOp, row_no: int, row: StudentRow) -> dict[str, str]:
    if op == "enroll" and isinstance(row, StudentEnrollRow):
        return enroll_row_fields(row_no, row)
    if op == "stop" and isinstance(row, StudentStopRow):
        return stop_row_fields(row_no, row)
    raise _refuse("row", f"row {row_no} is a {type(row).__name__}, not a {op} row")


# ---------------------------------------------------------------- request

def build_batch_request(op: BatchOp, batch_id: str, chunk_no: int, chunk_count: int,
                        rows: Sequence[tuple[int, StudentRow]], *, sender: str = "NJYBHUB",
                        sent_at: datetime | None = None) -> bytes:
    """SOAP request of one chunk; pass ``sent_at`` for byte-stable output (tests)."""
    if not 1 <= len(rows) <= MAX_CHUNK_ROWS:
        raise _refuse("row", f"a chunk holds 1-{MAX_CHUNK_ROWS} rows, got {len(rows)}")
    if not 1 <= chunk_no <= chunk_count:
        raise _refuse("fkxh", f"chunk {chunk_no} is outside 1..{chunk_count}")
    operation = OPERATIONS[op]
    head = _head(operation, serial_for(batch_id, chunk_no), sender, sent_at)
    env, soap_body = _envelope()
    request = etree.SubElement(soap_body, f"{_NSB}{operation}Request")
    group = etree.SubElement(request, _NSB + "head")
    for name, value in head.items():
        _add(group, name, value)
    body = etree.SubElement(request, _NSB + "body")
    for name, value in (("pch", batch_id), ("fkxh", str(chunk_no)),
                        ("fkzs", str(chunk_count)), ("hs", str(len(rows)))):
        _add(body, name, value)
    sub = etree.SubElement
    for row_no, row in rows:
        element = sub(body, _NSB + "row")
        for name, value in _row_fields(op, row_no, row).items():
            try:
                sub(element, _NSB + name).text = value
            except ValueError:
                raise _refuse(name, f"row {row_no}: contains characters XML cannot carry") \
                    from None
    return _serialize(env)


@dataclass(frozen=True)
class BatchRequest:
    """One chunk as tax reads it: head values, chunk position and rows by pinyin name."""

    op: BatchOp
    serial: str
    sender: str
    batch_id: str
    chunk_no: int
    chunk_count: int
    row_count: int
    """``hs`` as declared by the sender (the desk checks it against ``len(rows)``)."""
    rows: tuple[dict[str, str], ...]


def _int(fields: Mapping[str, str], name: str) -> int:
    try:
        return int(fields[name])
    except ValueError:
        raise _refuse(name, f"must be an integer, got {fields[name]!r}") from None


def parse_batch_request(body: bytes, *, max_bytes: int = BATCH_MAX_BYTES) -> BatchRequest:
    """Read one chunk request (the desk's reader); presence only, the desk validates the XSD."""
    payload = parse_payload(body, max_bytes=max_bytes)
    tag = payload.tag if isinstance(payload.tag, str) else ""
    if not (tag.startswith(_NSB) and tag.endswith("Request")):
        raise _refuse("Body", f"expected a student batch request, got {tag or payload.tag}")
    op = op_of(tag)
    kids = _children(payload)
    missing = [(part, "missing") for part in ("head", "body") if part not in kids]
    if missing:
        raise ValidationFailed(missing)
    head = _texts(kids["head"], _HEAD_FIELDS)
    if head["serviceCode"] != OPERATIONS[op]:
        raise _refuse("serviceCode", f"must be {OPERATIONS[op]}, got {head['serviceCode']}")
    fields = _texts(kids["body"], _BODY_FIELDS)
    names = _ROW_FIELDS[op]
    required = [n for n in names if n not in _OPTIONAL]
    optional = [n for n in names if n in _OPTIONAL]
    rows: list[dict[str, str]] = []
    for element in kids["body"]:
        if element.tag != _NSB + "row":
            continue
        try:
            row = _texts(element, required, optional)
        except ValidationFailed as exc:
            raise ValidationFailed([(f"row[{len(rows) + 1}].{f}", r) for f, r in exc.errors]) \
                from None
        rows.append({k: v for k, v in row.items() if v})
    if not rows:
        raise _refuse("row", "a chunk needs at least one row")
    return BatchRequest(op=op, serial=head["ywlsh"], sender=head["fsfdm"],
                        batch_id=fields["pch"], chunk_no=_int(fields, "fkxh"),
                        chunk_count=_int(fields, "fkzs"), row_count=_int(fields, "hs"),
                        rows=tuple(rows))


# ---------------------------------------------------------------- response

def build_batch_response(op: BatchOp, results: Sequence[RowResult], *, ok: bool = True,
                         code: str | None = None, msg: str = "", batch_id: str | None = None,
                         chunk_no: int | None = None) -> bytes:
    """Tax's answer to one chunk: per-row results, or ``ok=False`` refusing the whole chunk."""
    env, soap_body = _envelope()
    reply = etree.SubElement(soap_body, f"{_NSB}{OPERATIONS[op]}Response")
    _add(reply, "retStatus", "S" if ok else "F")
    _add(reply, "retCode", code or (RET_OK if ok else "999999"))
    _add(reply, "retMsg", msg)
    if batch_id is not None:
        _add(reply, "pch", batch_id)
    if chunk_no is not None:
        _add(reply, "fkxh", str(chunk_no))
    sub = etree.SubElement
    for r in results:
        element = sub(reply, _NSB + "result")
        sub(element, _NSB + "xh").text = str(r.row_no)
        sub(element, _NSB + "zjhm").text = r.id_number
        sub(element, _NSB + "jg").text = _STATUS_TO_JG[r.status]
        if r.reason_code:
            sub(element, _NSB + "yydm").text = r.reason_code
        if r.reason_text:
            sub(element, _NSB + "yysm").text = r.reason_text
    return _serialize(env)


def _fault(payload: Any) -> HubError:
    code = payload.findtext("faultcode") or payload.findtext(f"{{{SOAP_ENV}}}faultcode") or ""
    text = payload.findtext("faultstring") or payload.findtext(f"{{{SOAP_ENV}}}faultstring") or ""
    return error_for_fault(code.strip(), text.strip())


def parse_batch_response(op: BatchOp, body: bytes, *, max_bytes: int = BATCH_MAX_BYTES,
                         batch_id: str | None = None,
                         chunk_no: int | None = None) -> list[RowResult]:
    """Per-row results of one chunk; a Fault or ``retStatus`` F raises the matching hub error.

    ``batch_id``/``chunk_no``, when given, must match tax's echo: an answer to
    another chunk is unreadable, not a result.
    """
    payload = parse_payload(body, max_bytes=max_bytes)
    if payload.tag == _Q_FAULT:
        raise _fault(payload)
    expected = f"{_NSB}{OPERATIONS[op]}Response"
    if payload.tag != expected:
        raise _refuse(f"{OPERATIONS[op]}Response", f"expected {expected}, got {payload.tag}")
    f = _texts(payload, ("retStatus", "retCode"), ("retMsg", "pch", "fkxh"))
    if f["retStatus"] == "F":
        raise BusinessRejected(f["retCode"], f.get("retMsg", ""), partner=PARTNER)
    if f["retStatus"] != "S":
        raise _refuse("retStatus", f"must be S or F, got {f['retStatus']!r}")
    for name, want in (("pch", batch_id), ("fkxh", chunk_no)):
        if want is not None and f.get(name) is not None and f[name] != str(want):
            raise _refuse(name, f"answer is for {f[name]}, expected {want}")
    results: list[RowResult] = []
    for element in payload:
        if element.tag != _NSB + "result":
            continue
        r = _texts(element, ("xh", "zjhm", "jg"), ("yydm", "yysm"))
        status = _JG_TO_STATUS.get(r["jg"])
        if status is None:
            raise _refuse("jg", f"must be 1, 2 or 3, got {r['jg']!r}")
        if not r["xh"].isdigit() or int(r["xh"]) < 1:
            raise _refuse("xh", f"must be a positive integer, got {r['xh']!r}")
        results.append(RowResult(row_no=int(r["xh"]), id_number=r["zjhm"], status=status,
                                 reason_code=r.get("yydm", ""), reason_text=r.get("yysm", "")))
    return results


# ---------------------------------------------------------------- port and client

class StudentBatchPort(Protocol):
    """Sends one chunk and returns tax's per-row results.

    Raises only ``contracts.errors``: TransientError (retry the same chunk: same
    serial, so no duplicate effect) or PermanentError (the chunk was refused).
    """

    async def submit(self, op: BatchOp, batch_id: str, chunk_no: int, chunk_count: int,
                     rows: Sequence[tuple[int, StudentRow]]) -> list[RowResult]: ...


class StudentBatchClient:
    """StudentBatchPort over httpx and the lxml codec, posting to tax's ``/tax/ws``."""

    def __init__(self, endpoint: str, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None, sender: str = "NJYBHUB",
                 max_response_bytes: int = BATCH_MAX_BYTES) -> None:
        self._endpoint = endpoint
        self._sender = sender
        self._max = max_response_bytes
        self._http = bounded_client(limit=20, timeout=timeout, transport=transport)

    async def submit(self, op: BatchOp, batch_id: str, chunk_no: int, chunk_count: int,
                     rows: Sequence[tuple[int, StudentRow]]) -> list[RowResult]:
        """One chunk to tax; ``ywlsh`` = ``serial_for(batch_id, chunk_no)`` on every attempt."""
        payload = build_batch_request(op, batch_id, chunk_no, chunk_count, rows,
                                      sender=self._sender)
        headers = {"Content-Type": SOAP_CONTENT_TYPE,
                   "SOAPAction": f'"{NS}/{OPERATIONS[op]}"'}
        try:
            async with self._http.stream("POST", self._endpoint, content=payload,
                                         headers=headers) as response:
                body = await _read_capped(response, self._max)
                status = response.status_code
        except httpx.HTTPError as exc:
            raise map_httpx_error(exc) from exc
        return self._results(op, status, body, batch_id, chunk_no)

    def _results(self, op: BatchOp, status: int, body: bytes, batch_id: str,
                 chunk_no: int) -> list[RowResult]:
        if status == 200:
            try:
                return parse_batch_response(op, body, max_bytes=self._max,
                                            batch_id=batch_id, chunk_no=chunk_no)
            except ValidationFailed as exc:
                raise PartnerUnavailable(f"unreadable answer from tax: {exc}",
                                         partner=PARTNER) from exc
        if status == 500:  # SOAP 1.1 sends faults with 500: the faultcode decides
            with contextlib.suppress(ValidationFailed):
                parse_batch_response(op, body, max_bytes=self._max)
        raise error_for_status(status, body[:200].decode("utf-8", "replace"))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> StudentBatchClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
