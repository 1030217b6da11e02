"""``ZeepTaxClient``: the tax port through zeep and the hub-owned WSDL (tests and bench only).

The hub talks to tax with ``adapters.tax.client.LeanTaxClient`` (httpx + the lxml
codec of ``adapters.tax.soap``). This client drives the very same operations
through zeep and ``soap.TAX_WSDL``, so the tests can prove that the WSDL, the
schema and the lean codec agree (equivalent bodies, same answers, same error
mapping). zeep is a ``dev`` dependency, not a runtime one: nothing in production
imports this module. ``bench/soap.py`` reuses ``BINDING`` to time zeep against
the lean codec.
"""

from __future__ import annotations

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

from adapters.tax.client import error_for_status, map_httpx_error
from adapters.tax.soap import (
    NS,
    OP_ENROLL,
    OP_STOP,
    PARTNER,
    enroll_fields,
    error_for_fault,
    request_fields,
    stop_fields,
)
from contracts.employee import EmployeeEnrollment, EmployeeStop, TaxAck
from contracts.errors import BusinessRejected, PartnerUnavailable, ValidationFailed
from contracts.taxcat import op as catalogue_op

if TYPE_CHECKING:
    from adapters.tax.client import LeanTaxClient
    from adapters.tax.port import TaxPort

__all__ = ["BINDING", "ZeepTaxClient"]

BINDING: Final = f"{{{NS}}}TaxSocialInsuranceBinding"


def _unreadable(exc: Exception) -> PartnerUnavailable:
    return PartnerUnavailable(f"unreadable answer from tax: {exc}", partner=PARTNER)


class ZeepTaxClient:
    """TaxPort through zeep and the hub's WSDL (``soap.TAX_WSDL``), hardened against hostile XML.

    The WSDL is read once here (sync, local file); calls use zeep's async
    transport, which runs on the httpx client this object owns. Failures map to
    ``contracts.errors`` exactly as ``LeanTaxClient`` maps them.
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
        """The envelope zeep would send (no I/O): for equivalence tests."""
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
        return _ack_from_result(await self._invoke(OP_ENROLL, head, body))

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
