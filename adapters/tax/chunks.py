"""The chunk protocol of tax's file operations, shared by the student batches
(``adapters.tax.student_batch``) and the 统模式 initial load (``adapters.tax.initial_load``).

A request ``{operation}Request`` has a ``head`` (``ywlsh``, ``fsfdm``, ``fssj``,
``serviceCode``) and a ``body`` (``pch`` batch id, ``fkxh`` chunk number, ``fkzs`` chunk
count, ``hs`` rows, then one ``row`` element per row, children by pinyin name). The answer
``{operation}Response`` has ``retStatus`` (S, or F refusing the whole chunk), ``retCode``,
``retMsg``, the echoed ``pch``/``fkxh`` and one ``result`` per row. The serial is
``serial_for(batch_id, chunk_no)``, the same on every attempt, so tax replays a resend.

Rows and results are plain ``{element: text}`` mappings here; each operation's module
turns its rows into them and back. Parsing goes through ``soap.parse_payload`` (size cap,
no DOCTYPE, no entities or network); malformed input raises ``ValidationFailed`` naming
the element. ``ChunkPoster`` does the I/O and maps failures exactly like
``client.LeanTaxClient``: timeout -> PartnerTimeout; connect/reset, 5xx/429/408, a SOAP
Server fault or an unreadable answer -> PartnerUnavailable; 4xx, a SOAP Client fault ->
ClientError; ``retStatus`` F -> BusinessRejected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

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

__all__ = [
    "BATCH_MAX_BYTES",
    "ChunkClient",
    "ChunkPoster",
    "ChunkRequest",
    "build_chunk_request",
    "build_chunk_response",
    "read_chunk_request",
    "read_chunk_response",
    "serial_for",
]

BATCH_MAX_BYTES: Final = 4 << 20
"""A full 1000-row chunk is about 0.6 MB; the cap leaves room and still bounds memory."""

T = TypeVar("T")
RowSpec = tuple[Sequence[str], Sequence[str]]
"""(required, optional) child elements of a row or a result."""

_HEAD_FIELDS: Final = ("ywlsh", "fsfdm", "fssj", "serviceCode")
_BODY_FIELDS: Final = ("pch", "fkxh", "fkzs", "hs")
_NSB: Final = f"{{{NS}}}"
_Q_FAULT: Final = f"{{{SOAP_ENV}}}Fault"


def _refuse(element: str, reason: str) -> ValidationFailed:
    return ValidationFailed([(element, reason)])


def serial_for(batch_id: str, chunk_no: int) -> str:
    """业务流水号 of one chunk: stable across retries, so tax deduplicates a resend."""
    return f"{batch_id}-{chunk_no}"


def build_chunk_request(operation: str, batch_id: str, chunk_no: int, chunk_count: int,
                        rows: Sequence[tuple[int, Mapping[str, str]]], *, max_rows: int,
                        sender: str = "NJYBHUB", sent_at: datetime | None = None) -> bytes:
    """SOAP request of one chunk: ``rows`` are (row number, wire fields in schema order)."""
    if not 1 <= len(rows) <= max_rows:
        raise _refuse("row", f"a chunk holds 1-{max_rows} rows, got {len(rows)}")
    if not 1 <= chunk_no <= chunk_count:
        raise _refuse("fkxh", f"chunk {chunk_no} is outside 1..{chunk_count}")
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
    for row_no, fields in rows:
        element = sub(body, _NSB + "row")
        for name, value in fields.items():
            try:
                sub(element, _NSB + name).text = value
            except ValueError:
                raise _refuse(name, f"row {row_no}: contains characters XML cannot carry") \
                    from None
    return _serialize(env)


@dataclass(frozen=True)
class ChunkRequest:
    """One chunk as tax reads it: head values, chunk position and rows by pinyin name."""

    operation: str
    serial: str
    sender: str
    batch_id: str
    chunk_no: int
    chunk_count: int
    row_count: int
    """``hs`` as declared by the sender (the reader checks it against ``len(rows)``)."""
    rows: tuple[dict[str, str], ...]


def _int(fields: Mapping[str, str], name: str) -> int:
    try:
        return int(fields[name])
    except ValueError:
        raise _refuse(name, f"must be an integer, got {fields[name]!r}") from None


def read_chunk_request(body: bytes, *, operation_of: Callable[[str], str],
                       rows: Mapping[str, RowSpec], max_bytes: int = BATCH_MAX_BYTES
                       ) -> ChunkRequest:
    """Read one chunk request (tax's side): ``operation_of(tag)`` names the operation of the
    body element (or raises ``ValidationFailed``), ``rows[operation]`` its row elements.
    Presence only: empty optional cells are dropped, at least one row is required."""
    payload = parse_payload(body, max_bytes=max_bytes)
    tag = payload.tag if isinstance(payload.tag, str) else ""
    if not (tag.startswith(_NSB) and tag.endswith("Request")):
        raise _refuse("Body", f"expected a batch request, got {tag or payload.tag}")
    operation = operation_of(tag)
    kids = _children(payload)
    missing = [(part, "missing") for part in ("head", "body") if part not in kids]
    if missing:
        raise ValidationFailed(missing)
    head = _texts(kids["head"], _HEAD_FIELDS)
    if head["serviceCode"] != operation:
        raise _refuse("serviceCode", f"must be {operation}, got {head['serviceCode']}")
    fields = _texts(kids["body"], _BODY_FIELDS)
    required, optional = rows[operation]
    found: list[dict[str, str]] = []
    for element in kids["body"]:
        if element.tag != _NSB + "row":
            continue
        try:
            row = _texts(element, required, optional)
        except ValidationFailed as exc:
            raise ValidationFailed([(f"row[{len(found) + 1}].{f}", r) for f, r in exc.errors]) \
                from None
        found.append({k: v for k, v in row.items() if v})
    if not found:
        raise _refuse("row", "a chunk needs at least one row")
    return ChunkRequest(operation=operation, serial=head["ywlsh"], sender=head["fsfdm"],
                        batch_id=fields["pch"], chunk_no=_int(fields, "fkxh"),
                        chunk_count=_int(fields, "fkzs"), row_count=_int(fields, "hs"),
                        rows=tuple(found))


def build_chunk_response(operation: str, results: Sequence[Mapping[str, str]], *,
                         ok: bool = True, code: str | None = None, msg: str = "",
                         batch_id: str | None = None, chunk_no: int | None = None) -> bytes:
    """Tax's answer to one chunk: one ``result`` per mapping (empty values left out), or
    ``ok=False`` refusing the whole chunk."""
    env, soap_body = _envelope()
    reply = etree.SubElement(soap_body, f"{_NSB}{operation}Response")
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
        for name, value in r.items():
            if value:
                sub(element, _NSB + name).text = value
    return _serialize(env)


def _fault(payload: Any) -> HubError:
    code = payload.findtext("faultcode") or payload.findtext(f"{{{SOAP_ENV}}}faultcode") or ""
    text = payload.findtext("faultstring") or payload.findtext(f"{{{SOAP_ENV}}}faultstring") or ""
    return error_for_fault(code.strip(), text.strip())


def read_chunk_response(operation: str, body: bytes, *, results: RowSpec,
                        max_bytes: int = BATCH_MAX_BYTES, batch_id: str | None = None,
                        chunk_no: int | None = None) -> list[dict[str, str]]:
    """The ``result`` elements of one answer (``xh`` checked a positive integer); a Fault or
    ``retStatus`` F raises the matching hub error. ``batch_id``/``chunk_no``, when given,
    must match tax's echo: an answer to another chunk is unreadable, not a result."""
    payload = parse_payload(body, max_bytes=max_bytes)
    if payload.tag == _Q_FAULT:
        raise _fault(payload)
    expected = f"{_NSB}{operation}Response"
    if payload.tag != expected:
        raise _refuse(f"{operation}Response", f"expected {expected}, got {payload.tag}")
    f = _texts(payload, ("retStatus", "retCode"), ("retMsg", "pch", "fkxh"))
    if f["retStatus"] == "F":
        raise BusinessRejected(f["retCode"], f.get("retMsg", ""), partner=PARTNER)
    if f["retStatus"] != "S":
        raise _refuse("retStatus", f"must be S or F, got {f['retStatus']!r}")
    for name, want in (("pch", batch_id), ("fkxh", chunk_no)):
        if want is not None and f.get(name) is not None and f[name] != str(want):
            raise _refuse(name, f"answer is for {f[name]}, expected {want}")
    out: list[dict[str, str]] = []
    for element in payload:
        if element.tag != _NSB + "result":
            continue
        r = _texts(element, *results)
        if not r["xh"].isdigit() or int(r["xh"]) < 1:
            raise _refuse("xh", f"must be a positive integer, got {r['xh']!r}")
        out.append(r)
    return out


class ChunkPoster:
    """Posts chunk requests to tax's ``/tax/ws`` over one bounded httpx client."""

    def __init__(self, endpoint: str, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 max_response_bytes: int = BATCH_MAX_BYTES) -> None:
        self.endpoint = endpoint
        self.max_bytes = max_response_bytes
        self._http = bounded_client(limit=20, timeout=timeout, transport=transport)

    async def exchange(self, operation: str, payload: bytes,
                       read: Callable[[bytes, int], T]) -> T:
        """Post ``payload``; ``read(body, max_bytes)`` turns a 200 answer into the result
        (its ``ValidationFailed`` -> PartnerUnavailable: a retry is safe, same serial); a
        500 is read for its SOAP fault; any other status maps by ``error_for_status``."""
        headers = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{NS}/{operation}"'}
        try:
            async with self._http.stream("POST", self.endpoint, content=payload,
                                         headers=headers) as response:
                body = await _read_capped(response, self.max_bytes)
                status = response.status_code
        except httpx.HTTPError as exc:
            raise map_httpx_error(exc) from exc
        if status == 200:
            try:
                return read(body, self.max_bytes)
            except ValidationFailed as exc:
                raise PartnerUnavailable(f"unreadable answer from tax: {exc}",
                                         partner=PARTNER) from exc
        if status == 500:  # SOAP 1.1 sends faults with 500: the faultcode decides
            with contextlib.suppress(ValidationFailed):
                payload_element = parse_payload(body, max_bytes=self.max_bytes)
                if payload_element.tag == _Q_FAULT:
                    raise _fault(payload_element)
        raise error_for_status(status, body[:200].decode("utf-8", "replace"))

    async def aclose(self) -> None:
        await self._http.aclose()


class ChunkClient:
    """What every batch client is besides its ``submit``: a ``ChunkPoster`` to tax's
    ``/tax/ws``, the sender code (``fsfdm``) and an async context that closes it."""

    def __init__(self, endpoint: str, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None, sender: str = "NJYBHUB",
                 max_response_bytes: int = BATCH_MAX_BYTES) -> None:
        self._sender = sender
        self._poster = ChunkPoster(endpoint, timeout=timeout, transport=transport,
                                   max_response_bytes=max_response_bytes)

    async def aclose(self) -> None:
        await self._poster.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
