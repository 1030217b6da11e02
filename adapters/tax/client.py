"""Tax SOAP client (TaxPort): the only place that talks HTTP/SOAP to tax.

``LeanTaxClient`` is httpx + the lxml codec in ``soap.py``. The tests drive the
same operations through zeep and the hub-owned WSDL (``tests/support/zeep_tax.py``)
to prove that the WSDL and the lean codec agree; zeep is not a runtime dependency.
Every submit, 职工暂停/终止参保 included, goes through ``submit(operation, ...)``.

Failures are mapped at this boundary and only ``contracts.errors`` are raised:

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
from typing import TYPE_CHECKING, Final

import httpx
from pydantic import BaseModel

from adapters.http import bounded_client
from adapters.tax.soap import (
    MAX_BYTES,
    NS,
    PARTNER,
    SOAP_ACTION_ENROLL,
    SOAP_CONTENT_TYPE,
    build_enroll_request,
    build_request,
    parse_ack,
    parse_query_reply,
)
from contracts.employee import EmployeeEnrollment, TaxAck
from contracts.errors import (
    ClientError,
    HubError,
    PartnerTimeout,
    PartnerUnavailable,
    ValidationFailed,
)

if TYPE_CHECKING:
    from adapters.tax.port import TaxPort

__all__ = ["LeanTaxClient", "error_for_status", "map_httpx_error"]

_HEADERS: Final = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{SOAP_ACTION_ENROLL}"'}


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
        self._http = bounded_client(limit=100, timeout=timeout, transport=transport)
        self._query_http = bounded_client(limit=20, timeout=query_timeout or timeout,
                                          transport=transport)

    async def enroll_employee(self, req: EmployeeEnrollment, *, serial: str,
                              sent_at: datetime | None = None) -> TaxAck:
        """职工参保登记; ``serial`` is the 业务流水号 tax deduplicates on."""
        payload = build_enroll_request(req, serial, self._sender, sent_at=sent_at)
        return await self._post(payload, _HEADERS)

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


if TYPE_CHECKING:  # mypy proves the client satisfies the port
    _conforms: type[TaxPort] = LeanTaxClient
