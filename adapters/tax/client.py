"""Tax SOAP clients (TaxPort): the only place that talks HTTP/SOAP to tax.

Two implementations of the same port:

* ``LeanTaxClient``: httpx + the lxml codec in ``soap.py``; the hot path.
* ``ZeepTaxClient``: zeep driven by the hub-owned WSDL; slower, kept to prove
  the WSDL and the lean codec agree and as a fallback if tax's WSDL grows.

Both map failures at this boundary and raise only ``contracts.errors``:

    httpx timeout                      -> PartnerTimeout
    connect/reset, HTTP 5xx/429/408    -> PartnerUnavailable
    SOAP Server fault                  -> PartnerUnavailable
    HTTP 4xx, SOAP Client fault        -> ClientError
    retStatus F                        -> BusinessRejected(retCode, retMsg)
    unreadable answer                  -> PartnerUnavailable

An unreadable answer is treated as transient on purpose: whether tax applied
the request is unknown, and a retry with the same ``ywlsh`` is safe because
tax deduplicates on it; the retry policy bounds how often that happens.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
import zeep
import zeep.exceptions
from pydantic import BaseModel
from zeep.helpers import serialize_object
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport
from zeep.wsdl.utils import etree_to_string

from adapters.tax.port import TaxPort
from adapters.tax.soap import (
    MAX_BYTES,
    NS,
    OP_ENROLL,
    OP_STOP,
    PARTNER,
    SOAP_ACTION_ENROLL,
    SOAP_ACTION_STOP,
    SOAP_CONTENT_TYPE,
    build_enroll_request,
    build_request,
    build_stop_request,
    enroll_fields,
    error_for_fault,
    parse_ack,
    parse_query_reply,
    request_fields,
    stop_fields,
)
from contracts.employee import EmployeeEnrollment, EmployeeStop, TaxAck
from contracts.errors import (
    BusinessRejected,
    ClientError,
    HubError,
    PartnerTimeout,
    PartnerUnavailable,
    ValidationFailed,
)
from contracts.taxcat import op as catalogue_op

__all__ = ["BINDING", "LeanTaxClient", "ZeepTaxClient", "error_for_status", "map_httpx_error"]

BINDING: Final = f"{{{NS}}}TaxSocialInsuranceBinding"
_HEADERS: Final = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{SOAP_ACTION_ENROLL}"'}
_STOP_HEADERS: Final = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{SOAP_ACTION_STOP}"'}


def _headers(operation: str) -> dict[str, str]:
    return {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{NS}/{operation}"'}


def error_for_status(status: int, detail: str = "") -> HubError:
    """HTTP status without a usable SOAP answer -> hub error (the retry split lives here)."""
    reason = f"HTTP {status}" + (f": {detail[:200]}" if detail else "")
    if status in (408, 429) or status >= 500:
        return PartnerUnavailable(reason, partner=PARTNER)
    if 400 <= status < 500:
        return ClientError(reason, partner=PARTNER)
    return PartnerUnavailable(f"unexpected {reason}", partner=PARTNER)


def map_httpx_error(exc: httpx.HTTPError) -> HubError:
    """httpx failure -> hub error; a bad URL or protocol is our mistake, not tax's outage."""
    if isinstance(exc, httpx.TimeoutException):
        return PartnerTimeout(f"no answer in time: {type(exc).__name__}", partner=PARTNER)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return ClientError(f"request not sendable: {exc}", partner=PARTNER)
    return PartnerUnavailable(f"{type(exc).__name__}: {exc}", partner=PARTNER)


def _unreadable(exc: Exception) -> PartnerUnavailable:
    return PartnerUnavailable(f"unreadable answer from tax: {exc}", partner=PARTNER)


def _ack_from_http(status: int, body: bytes, max_bytes: int) -> TaxAck:
    if status == 200:
        try:
            return parse_ack(body, max_bytes=max_bytes)
        except ValidationFailed as exc:
            raise _unreadable(exc) from exc
    if status == 500:  # SOAP 1.1 sends faults with 500: the faultcode decides
        with contextlib.suppress(ValidationFailed):
            parse_ack(body, max_bytes=max_bytes)
    raise error_for_status(status, body[:200].decode("utf-8", "replace"))


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Stop reading one byte past the cap, so a huge answer never sits in memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            break
    return b"".join(chunks)


class LeanTaxClient:
    """TaxPort over httpx with the lxml codec: the hub's hot path to tax."""

    def __init__(self, endpoint: str, *, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None,
                 sender: str = "NJYBHUB", max_response_bytes: int = MAX_BYTES,
                 query_timeout: float | None = None) -> None:
        self._endpoint = endpoint
        self._sender = sender
        self._max = max_response_bytes
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport)
        self._query_http = httpx.AsyncClient(
            timeout=httpx.Timeout(query_timeout or timeout), transport=transport,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10))

    async def enroll_employee(self, req: EmployeeEnrollment, *, serial: str,
                              sent_at: datetime | None = None) -> TaxAck:
        """职工参保登记; ``serial`` is the 业务流水号 tax deduplicates on."""
        payload = build_enroll_request(req, serial, self._sender, sent_at=sent_at)
        return await self._post(payload, _HEADERS)

    async def stop_employee(self, req: EmployeeStop, *, serial: str,
                            sent_at: datetime | None = None) -> TaxAck:
        """职工暂停/终止参保 from ``req.stop_date``; same serial rule and error mapping."""
        payload = build_stop_request(req, serial, self._sender, sent_at=sent_at)
        return await self._post(payload, _STOP_HEADERS)

    async def submit(self, operation: str, req: BaseModel, *, serial: str,
                     sent_at: datetime | None = None) -> TaxAck:
        """Any catalogue submit (F2); answered by a 受理回执, the result by FeedbackNotify."""
        payload = build_request(operation, req, serial, self._sender, sent_at=sent_at)
        return await self._post(payload, _headers(operation))

    async def query(self, operation: str, req: BaseModel, *,
                    serial: str) -> list[dict[str, str]]:
        """A catalogue query (F4) on the query lane: its own connection pool and timeout,
        so an interactive query never waits behind bulk submits."""
        payload = build_request(operation, req, serial, self._sender)
        status, body = await self._exchange(self._query_http, payload, _headers(operation))
        if status == 200:
            try:
                return parse_query_reply(operation, body, max_bytes=self._max)
            except ValidationFailed as exc:
                raise _unreadable(exc) from exc
        _ack_from_http(status, body, self._max)  # raises the mapped error
        raise _unreadable(ValueError(f"HTTP {status}"))  # pragma: no cover

    async def _exchange(self, client: httpx.AsyncClient, payload: bytes,
                        headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            async with client.stream("POST", self._endpoint, content=payload,
                                     headers=headers) as response:
                return response.status_code, await _read_capped(response, self._max)
        except httpx.HTTPError as exc:
            raise map_httpx_error(exc) from exc

    async def _post(self, payload: bytes, headers: dict[str, str]) -> TaxAck:
        status, body = await self._exchange(self._http, payload, headers)
        return _ack_from_http(status, body, self._max)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._query_http.aclose()


class ZeepTaxClient:
    """TaxPort through zeep and the hub's WSDL (``soap.TAX_WSDL``), hardened against hostile XML.

    The WSDL is read once here (sync, local file); calls use zeep's async
    transport, which runs on the httpx client this object owns.
    """

    def __init__(self, wsdl_path: str | Path, endpoint: str, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None, *,
                 sender: str = "NJYBHUB") -> None:
        self._sender = sender
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport)
        # zeep insists on a sync client for WSDL loading; own it so it gets closed.
        self._wsdl_http = httpx.Client(timeout=httpx.Timeout(timeout))
        settings = zeep.Settings(strict=True, xml_huge_tree=False, forbid_dtd=True,
                                 forbid_entities=True, forbid_external=True)
        transport_ = AsyncTransport(  # type: ignore[no-untyped-call]
            client=self._http, wsdl_client=self._wsdl_http)
        self._zeep = zeep.AsyncClient(  # type: ignore[no-untyped-call]
            str(wsdl_path), transport=transport_, settings=settings)
        # create_service() would give a sync proxy; build the async one on the binding.
        self._service = AsyncServiceProxy(  # type: ignore[no-untyped-call]
            self._zeep, self._zeep.wsdl.bindings[BINDING], address=endpoint)

    def render_enroll(self, req: EmployeeEnrollment, serial: str, *,
                      sent_at: datetime | None = None) -> bytes:
        """The envelope zeep would send (no I/O): for equivalence tests and the bench."""
        head, body = enroll_fields(req, serial, self._sender, sent_at=sent_at)
        return self._render(OP_ENROLL, head, body)

    def render_stop(self, req: EmployeeStop, serial: str, *,
                    sent_at: datetime | None = None) -> bytes:
        """The EmployeeStop envelope zeep would send (no I/O): for equivalence tests."""
        head, body = stop_fields(req, serial, self._sender, sent_at=sent_at)
        return self._render(OP_STOP, head, body)

    def _render(self, operation: str, head: dict[str, str], body: dict[str, str]) -> bytes:
        envelope = self._zeep.create_message(  # type: ignore[no-untyped-call]
            self._service, operation, head=head, body=body)
        return bytes(etree_to_string(envelope))  # type: ignore[no-untyped-call]

    async def enroll_employee(self, req: EmployeeEnrollment, *, serial: str,
                              sent_at: datetime | None = None) -> TaxAck:
        """职工参保登记 via zeep; same error mapping as the lean client."""
        head, body = enroll_fields(req, serial, self._sender, sent_at=sent_at)
        return await self._call(OP_ENROLL, head, body)

    async def stop_employee(self, req: EmployeeStop, *, serial: str,
                            sent_at: datetime | None = None) -> TaxAck:
        """职工暂停/终止参保 via zeep; same error mapping as the lean client."""
        head, body = stop_fields(req, serial, self._sender, sent_at=sent_at)
        return await self._call(OP_STOP, head, body)

    async def submit(self, operation: str, req: BaseModel, *, serial: str,
                     sent_at: datetime | None = None) -> TaxAck:
        """Any catalogue submit via zeep; same error mapping as the lean client."""
        head, body = request_fields(operation, req, serial, self._sender, sent_at=sent_at)
        return _ack_from_result(await self._invoke(operation, head, _zeep_body(body)))

    async def query(self, operation: str, req: BaseModel, *,
                    serial: str) -> list[dict[str, str]]:
        """A catalogue query via zeep; records by canonical name."""
        head, body = request_fields(operation, req, serial, self._sender)
        result = await self._invoke(operation, head, _zeep_body(body))
        if getattr(result, "retStatus", None) == "F":
            raise BusinessRejected(result.retCode or "", result.retMsg or "", partner=PARTNER)
        by_xml = {f.xml: f.attr for f in catalogue_op(operation).reply_fields}
        records = getattr(getattr(result, "records", None), "record", None) or []
        return [{by_xml[k]: str(v) for k, v in serialize_object(r).items()  # type: ignore[no-untyped-call]
                 if k in by_xml and v is not None} for r in records]

    def render(self, operation: str, req: BaseModel, serial: str, *,
               sent_at: datetime | None = None) -> bytes:
        """The envelope zeep would send for any catalogue operation (no I/O)."""
        head, body = request_fields(operation, req, serial, self._sender, sent_at=sent_at)
        envelope = self._zeep.create_message(  # type: ignore[no-untyped-call]
            self._service, operation, head=head, body=_zeep_body(body))
        return bytes(etree_to_string(envelope))  # type: ignore[no-untyped-call]

    async def _call(self, operation: str, head: dict[str, str],
                    body: dict[str, str]) -> TaxAck:
        return _ack_from_result(await self._invoke(operation, head, body))

    async def _invoke(self, operation: str, head: dict[str, str], body: dict[str, Any]) -> Any:
        try:
            result: Any = await getattr(self._service, operation)(head=head, body=body)
        except httpx.HTTPError as exc:
            raise map_httpx_error(exc) from exc
        except zeep.exceptions.Fault as exc:
            raise error_for_fault(exc.code or "", exc.message or "") from exc
        except zeep.exceptions.TransportError as exc:
            raise error_for_status(exc.status_code, str(exc.message)) from exc
        except zeep.exceptions.ValidationError as exc:
            raise ValidationFailed([(".".join(map(str, exc.path or [])) or operation,
                                     str(exc.message))], partner=PARTNER) from exc
        except zeep.exceptions.Error as exc:
            raise _unreadable(exc) from exc
        return result


    async def aclose(self) -> None:
        await self._http.aclose()
        self._wsdl_http.close()


def _zeep_body(body: dict[str, str | list[str]]) -> dict[str, Any]:
    """zeep wants a list element as ``{"zjhm": [...]}`` inside its holder."""
    return {k: ({"zjhm": v} if isinstance(v, list) else v) for k, v in body.items()}


def _ack_from_result(result: Any) -> TaxAck:
    if result is None:
        raise _unreadable(ValueError("empty acknowledgement"))
    status = getattr(result, "retStatus", None)
    code = getattr(result, "retCode", None) or ""
    msg = getattr(result, "retMsg", None) or ""
    if status == "F":
        raise BusinessRejected(code, msg, partner=PARTNER)
    if status != "S" or not getattr(result, "slh", None):
        raise _unreadable(ValueError(f"retStatus={status!r} slh={getattr(result, 'slh', None)!r}"))
    return TaxAck(accept_no=result.slh, ret_code=code, ret_msg=msg)


if TYPE_CHECKING:  # mypy proves both clients satisfy the port
    def _conforms(lean: LeanTaxClient, zeep_client: ZeepTaxClient) -> tuple[TaxPort, TaxPort]:
        return lean, zeep_client
