"""统模式 initial load and 职工批量暂停 over SOAP: the codec (both directions) and the client.

The same protocol as the student batches (``adapters.tax.student_batch``): one
chunk of at most 1000 rows per call to ``/tax/ws``, a ``head`` (``ywlsh``,
``fsfdm``, ``fssj``, ``serviceCode``) and a ``body`` (``pch`` batch id, ``fkxh``
chunk number, ``fkzs`` chunk count, ``hs`` rows, then the ``row`` elements); tax
answers per row in the same response. The serial ``ywlsh`` is
``serial_for(batch_id, chunk_no)``, so a chunk sent again (a retry, or a rerun
after a crash) is replayed by tax, not applied twice.

Operations and row elements (pinyin names as in ``contracts.taxcat``):

    InitialLoadUnit       shxydm dwmc dwlx [fddbr] sbjbjgdm xzlx ksjfny
    InitialLoadEmployee   shxydm zjhm xm xzlx ksjfny jfjs [lxdh]
    InitialLoadFlexible   zjhm xm hdfs ksjfny jsjfny xzlx ltxbz
    InitialLoadResident   zjhm xm jcybqh rylb cbnd [lxdh]
    EmployeeBatchSuspend  shxydm zjhm xm zdrq zdyy [bz]

every row starting with ``xh`` (the row number in the file). A result carries
``xh``, the row's key (``zjhm``, or ``shxydm`` for a unit), ``jg`` (1 done, 2
refused) and ``yydm``/``yysm``. Failures map at this boundary exactly like
``StudentBatchClient``: timeout -> PartnerTimeout; connect, 5xx/429/408, SOAP
Server fault, an unreadable answer -> PartnerUnavailable; 4xx, SOAP Client
fault -> ClientError; ``retStatus`` F -> BusinessRejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
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
from contracts.errors import ValidationFailed
from contracts.initial_load import (
    MAX_CHUNK_ROWS,
    EmployeeLoadRow,
    EmployeeSuspendRow,
    FlexibleLoadRow,
    LoadKind,
    LoadResult,
    LoadRow,
    ResidentLoadRow,
    UnitLoadRow,
)

__all__ = [
    "KEY_ELEMENT",
    "OPERATIONS",
    "ROW_FIELDS",
    "InitialLoadClient",
    "InitialLoadPort",
    "LoadRequest",
    "build_load_request",
    "build_load_response",
    "is_load_call",
    "kind_of",
    "parse_load_request",
    "parse_load_response",
    "row_fields",
    "serial_for",
]

OPERATIONS: Final[dict[LoadKind, str]] = {
    "unit": "InitialLoadUnit",
    "employee": "InitialLoadEmployee",
    "flexible": "InitialLoadFlexible",
    "resident": "InitialLoadResident",
    "employee_suspend": "EmployeeBatchSuspend",
}
KEY_ELEMENT: Final[dict[LoadKind, str]] = {
    "unit": "shxydm", "employee": "zjhm", "flexible": "zjhm", "resident": "zjhm",
    "employee_suspend": "zjhm"}
"""The row element tax keys its effect (and its result) on."""
ROW_FIELDS: Final[dict[LoadKind, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "unit": (("xh", "shxydm", "dwmc", "dwlx", "sbjbjgdm", "xzlx", "ksjfny"), ("fddbr",)),
    "employee": (("xh", "shxydm", "zjhm", "xm", "xzlx", "ksjfny", "jfjs"), ("lxdh",)),
    "flexible": (("xh", "zjhm", "xm", "hdfs", "ksjfny", "jsjfny", "xzlx", "ltxbz"), ()),
    "resident": (("xh", "zjhm", "xm", "jcybqh", "rylb", "cbnd"), ("lxdh",)),
    "employee_suspend": (("xh", "shxydm", "zjhm", "xm", "zdrq", "zdyy"), ("bz",)),
}
"""Row elements per kind: (required, optional), in order."""

_ROW_SPECS: Final = {OPERATIONS[k]: spec for k, spec in ROW_FIELDS.items()}


def _refuse(element: str, reason: str) -> ValidationFailed:
    return ValidationFailed([(element, reason)])


def kind_of(name: str) -> LoadKind:
    """The kind of an operation name, a SOAPAction (quoted or not) or a body element."""
    local = name.strip().strip('"').rpartition("/")[2].rpartition("}")[2]
    local = local.removesuffix("Request").removesuffix("Response")
    for kind, operation in OPERATIONS.items():
        if local in (kind, operation):
            return kind
    raise _refuse("serviceCode", f"not an initial load operation: {name!r}")


def is_load_call(action: str, head: bytes) -> bool:
    """Whether a call to ``/tax/ws`` is one of these operations (SOAPAction or the body's
    first bytes): how the tax simulator routes it to its initial-load desk."""
    return any(op in action or op.encode() in head for op in OPERATIONS.values())


# ---------------------------------------------------------------- rows <-> wire

def row_fields(kind: LoadKind, row_no: int, row: LoadRow) -> dict[str, str]:
    """Wire values of one row (pinyin names, schema order; empty optionals left out)."""
    out: dict[str, str] = {"xh": str(row_no)}
    if kind == "unit" and isinstance(row, UnitLoadRow):
        out.update(shxydm=row.credit_code, dwmc=row.unit_name, dwlx=row.unit_type,
                   sbjbjgdm=row.division, xzlx=",".join(row.insutypes),
                   ksjfny=row.start_month, fddbr=row.legal_rep)
    elif kind == "employee" and isinstance(row, EmployeeLoadRow):
        out.update(shxydm=row.credit_code, zjhm=row.id_number, xm=row.name,
                   xzlx=row.insutype, ksjfny=row.start_month,
                   jfjs=str(row.contribution_base), lxdh=row.phone)
    elif kind == "flexible" and isinstance(row, FlexibleLoadRow):
        out.update(zjhm=row.id_number, xm=row.name, hdfs=row.assess_mode,
                   ksjfny=row.start_month, jsjfny=row.end_month, xzlx=row.insutype,
                   ltxbz=row.retired)
    elif kind == "resident" and isinstance(row, ResidentLoadRow):
        out.update(zjhm=row.id_number, xm=row.name, jcybqh=row.community,
                   rylb=row.resident_type, cbnd=row.insure_year, lxdh=row.phone)
    elif kind == "employee_suspend" and isinstance(row, EmployeeSuspendRow):
        out.update(shxydm=row.credit_code, zjhm=row.id_number, xm=row.name,
                   zdrq=row.suspend_date.isoformat(), zdyy=row.suspend_reason, bz=row.remark)
    else:
        raise _refuse("row", f"row {row_no} is a {type(row).__name__}, not a {kind} row")
    required, optional = ROW_FIELDS[kind]
    return {n: out[n] for n in (*required, *optional) if out.get(n)}


# ---------------------------------------------------------------- request

def build_load_request(kind: LoadKind, batch_id: str, chunk_no: int, chunk_count: int,
                       rows: Sequence[tuple[int, LoadRow]], *, sender: str = "NJYBHUB",
                       sent_at: datetime | None = None) -> bytes:
    """SOAP request of one chunk; pass ``sent_at`` for byte-stable output (tests)."""
    return build_chunk_request(OPERATIONS[kind], batch_id, chunk_no, chunk_count,
                               [(n, row_fields(kind, n, r)) for n, r in rows],
                               max_rows=MAX_CHUNK_ROWS, sender=sender, sent_at=sent_at)


@dataclass(frozen=True, kw_only=True)
class LoadRequest(ChunkRequest):
    """One chunk as tax reads it (``ChunkRequest``) and the kind of its operation."""

    kind: LoadKind


def parse_load_request(body: bytes, *, max_bytes: int = BATCH_MAX_BYTES) -> LoadRequest:
    """Read one chunk request (tax's side): every required element present, counts agree."""
    r = read_chunk_request(body, operation_of=lambda tag: OPERATIONS[kind_of(tag)],
                           rows=_ROW_SPECS, max_bytes=max_bytes)
    for n, row in enumerate(r.rows, start=1):
        if not row["xh"].isdigit() or int(row["xh"]) < 1:
            raise _refuse(f"row[{n}].xh", f"must be a positive integer, got {row['xh']!r}")
    if not len(r.rows) <= MAX_CHUNK_ROWS:
        raise _refuse("row", f"a chunk holds 1-{MAX_CHUNK_ROWS} rows, got {len(r.rows)}")
    if r.row_count != len(r.rows):
        raise _refuse("hs", f"says {r.row_count} rows, the chunk has {len(r.rows)}")
    if not 1 <= r.chunk_no <= r.chunk_count:
        raise _refuse("fkxh", f"{r.chunk_no} is outside 1..{r.chunk_count}")
    return LoadRequest(**{f.name: getattr(r, f.name) for f in fields(r)},
                       kind=kind_of(r.operation))


# ---------------------------------------------------------------- response

def build_load_response(kind: LoadKind, results: Sequence[LoadResult], *, ok: bool = True,
                        code: str | None = None, msg: str = "", batch_id: str | None = None,
                        chunk_no: int | None = None) -> bytes:
    """Tax's answer to one chunk: per-row results, or ``ok=False`` refusing the whole chunk."""
    key = KEY_ELEMENT[kind]
    return build_chunk_response(
        OPERATIONS[kind], [{"xh": str(r.row_no), key: r.key, "jg": "1" if r.ok else "2",
                            "yydm": r.reason_code, "yysm": r.reason_text} for r in results],
        ok=ok, code=code, msg=msg, batch_id=batch_id, chunk_no=chunk_no)


def parse_load_response(kind: LoadKind, body: bytes, *, max_bytes: int = BATCH_MAX_BYTES,
                        batch_id: str | None = None,
                        chunk_no: int | None = None) -> list[LoadResult]:
    """Per-row results of one chunk; a Fault or ``retStatus`` F raises the matching hub error.
    ``batch_id``/``chunk_no``, when given, must match tax's echo."""
    key = KEY_ELEMENT[kind]
    results: list[LoadResult] = []
    for r in read_chunk_response(OPERATIONS[kind], body, results=(("xh", key, "jg"),
                                                                  ("yydm", "yysm")),
                                 max_bytes=max_bytes, batch_id=batch_id, chunk_no=chunk_no):
        if r["jg"] not in ("1", "2"):
            raise _refuse("jg", f"must be 1 or 2, got {r['jg']!r}")
        results.append(LoadResult(row_no=int(r["xh"]), key=r[key], ok=r["jg"] == "1",
                                  reason_code=r.get("yydm", ""),
                                  reason_text=r.get("yysm", "")))
    return results


# ---------------------------------------------------------------- port and client

class InitialLoadPort(Protocol):
    """Sends one chunk and returns tax's per-row results.

    Raises only ``contracts.errors``: TransientError (send the same chunk again: same
    serial, no duplicate effect) or PermanentError (the chunk was refused).
    """

    async def submit(self, kind: LoadKind, batch_id: str, chunk_no: int, chunk_count: int,
                     rows: Sequence[tuple[int, LoadRow]]) -> list[LoadResult]: ...


class InitialLoadClient(ChunkClient):
    """InitialLoadPort over httpx and the lxml codec, posting to tax's ``/tax/ws``."""

    async def submit(self, kind: LoadKind, batch_id: str, chunk_no: int, chunk_count: int,
                     rows: Sequence[tuple[int, LoadRow]]) -> list[LoadResult]:
        """One chunk to tax; ``ywlsh`` = ``serial_for(batch_id, chunk_no)`` on every attempt."""
        payload = build_load_request(kind, batch_id, chunk_no, chunk_count, rows,
                                     sender=self._sender)
        return await self._poster.exchange(
            OPERATIONS[kind], payload, lambda body, cap: parse_load_response(
                kind, body, max_bytes=cap, batch_id=batch_id, chunk_no=chunk_no))
