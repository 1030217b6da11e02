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

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

from adapters.tax.chunks import (
    BATCH_MAX_BYTES,
    ChunkClient,
    ChunkRequest,
    build_chunk_request,
    build_chunk_response,
    read_chunk_request,
    read_chunk_response,
    serial_for,
)
from adapters.tax.soap import NS
from contracts.errors import ValidationFailed
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
STUDENT_BATCH_XSD: Final = Path(__file__).resolve().parents[2] / "contracts" / "tax" / \
    "student_batch.xsd"

#: Row elements in schema order (``knrylb`` and ``bz`` optional).
ENROLL_ROW_FIELDS: Final = ("xh", "zjhm", "xm", "xb", "csrq", "lxdh", "yxdm", "yxmc", "xsxh",
                            "rxny", "cbnd", "jcybqh", "knrylb")
STOP_ROW_FIELDS: Final = ("xh", "zjhm", "xm", "tbrq", "tbyy", "bz")
_OPTIONAL: Final = frozenset({"knrylb", "bz"})
_ROW_FIELDS: Final[dict[BatchOp, tuple[str, ...]]] = {
    "enroll": ENROLL_ROW_FIELDS, "stop": STOP_ROW_FIELDS}
_JG_TO_STATUS: Final[dict[str, RowStatus]] = {"1": "success", "2": "failure", "3": "difficulty"}
_STATUS_TO_JG: Final[dict[RowStatus, str]] = {v: k for k, v in _JG_TO_STATUS.items()}
_ROW_SPECS: Final = {
    OPERATIONS[op]: ([n for n in names if n not in _OPTIONAL], [n for n in names if n in _OPTIONAL])
    for op, names in _ROW_FIELDS.items()}
_RESULT_SPEC: Final = (("xh", "zjhm", "jg"), ("yydm", "yysm"))


def _refuse(element: str, reason: str) -> ValidationFailed:
    return ValidationFailed([(element, reason)])


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
    return build_chunk_request(OPERATIONS[op], batch_id, chunk_no, chunk_count,
                               [(n, _row_fields(op, n, r)) for n, r in rows],
                               max_rows=MAX_CHUNK_ROWS, sender=sender, sent_at=sent_at)


@dataclass(frozen=True, kw_only=True)
class BatchRequest(ChunkRequest):
    """One chunk as tax reads it (``ChunkRequest``: head values, chunk position, rows by
    pinyin name; the desk checks ``row_count`` against ``len(rows)``) and its operation."""

    op: BatchOp


def parse_batch_request(body: bytes, *, max_bytes: int = BATCH_MAX_BYTES) -> BatchRequest:
    """Read one chunk request (the desk's reader); presence only, the desk validates the XSD."""
    r = read_chunk_request(body, operation_of=lambda tag: OPERATIONS[op_of(tag)],
                           rows=_ROW_SPECS, max_bytes=max_bytes)
    return BatchRequest(**{f.name: getattr(r, f.name) for f in fields(r)},
                        op=op_of(r.operation))


# ---------------------------------------------------------------- response

def build_batch_response(op: BatchOp, results: Sequence[RowResult], *, ok: bool = True,
                         code: str | None = None, msg: str = "", batch_id: str | None = None,
                         chunk_no: int | None = None) -> bytes:
    """Tax's answer to one chunk: per-row results, or ``ok=False`` refusing the whole chunk."""
    return build_chunk_response(
        OPERATIONS[op], [{"xh": str(r.row_no), "zjhm": r.id_number, "jg": _STATUS_TO_JG[r.status],
                          "yydm": r.reason_code, "yysm": r.reason_text} for r in results],
        ok=ok, code=code, msg=msg, batch_id=batch_id, chunk_no=chunk_no)


def parse_batch_response(op: BatchOp, body: bytes, *, max_bytes: int = BATCH_MAX_BYTES,
                         batch_id: str | None = None,
                         chunk_no: int | None = None) -> list[RowResult]:
    """Per-row results of one chunk; a Fault or ``retStatus`` F raises the matching hub error.

    ``batch_id``/``chunk_no``, when given, must match tax's echo: an answer to
    another chunk is unreadable, not a result.
    """
    results: list[RowResult] = []
    for r in read_chunk_response(OPERATIONS[op], body, results=_RESULT_SPEC,
                                 max_bytes=max_bytes, batch_id=batch_id, chunk_no=chunk_no):
        status = _JG_TO_STATUS.get(r["jg"])
        if status is None:
            raise _refuse("jg", f"must be 1, 2 or 3, got {r['jg']!r}")
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


class StudentBatchClient(ChunkClient):
    """StudentBatchPort over httpx and the lxml codec, posting to tax's ``/tax/ws``."""

    async def submit(self, op: BatchOp, batch_id: str, chunk_no: int, chunk_count: int,
                     rows: Sequence[tuple[int, StudentRow]]) -> list[RowResult]:
        """One chunk to tax; ``ywlsh`` = ``serial_for(batch_id, chunk_no)`` on every attempt."""
        payload = build_batch_request(op, batch_id, chunk_no, chunk_count, rows,
                                      sender=self._sender)
        return await self._poster.exchange(
            OPERATIONS[op], payload, lambda body, cap: parse_batch_response(
                op, body, max_bytes=cap, batch_id=batch_id, chunk_no=chunk_no))
