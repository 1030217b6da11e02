"""``PharmacyPort`` over HTTP: the pharmacy ERP's REST interface, signed both ways.

The hub signs as ``hub`` with ``partners.pharmacy_erp.secret`` (the key the ERP signs its
own calls to the hub with), in the one HMAC scheme (``contracts.signing``, ``X-Partner-*``
headers); ``X-Hub-Serial`` lets the ERP drop a repeat. The ERP answers
``{"code": "0", "message": ..., "data": ...}``; another code is its refusal. Errors are
mapped here, at the boundary:

    timeout                              -> PartnerTimeout
    connection errors, 5xx, 408, 429     -> PartnerUnavailable   (retried, then DLQ)
    code other than "0"                  -> BusinessRejected     (refused: not retried)
    other 4xx, a malformed answer        -> ClientError / PartnerUnavailable

Paths under the endpoint: ``POST /orders`` (接单), ``POST /refunds`` (退款),
``GET /stock?pharmacy_code=`` (库存), ``GET /reconciliation?pharmacy_code=&day=`` (对账).
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from config.settings import PartnerConfig
from contracts.drugs import PHARMACY, ReconTotals, StockLine
from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable

if TYPE_CHECKING:
    from adapters.pharmacy.port import PharmacyPort

__all__ = ["SIGNER", "PharmacyClient", "rest_call"]

SIGNER = "hub"


async def rest_call(http: httpx.AsyncClient, config: PartnerConfig, partner: str, method: str,
                    path: str, *, payload: dict[str, Any] | None = None,
                    params: dict[str, str] | None = None, serial: str = "") -> Any:
    """One signed call to a REST partner; its ``data`` when it answers code "0"."""
    url = f"{config.endpoint.rstrip('/')}/{path}"
    body = b"" if payload is None else json.dumps(
        payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json"}
    if serial:
        headers["X-Hub-Serial"] = serial
    try:
        r = await http.request(method, url, content=body or None, params=params,
                               headers=headers, timeout=config.timeout_s,
                               auth=SignedAuth(SIGNER, config.secret.get_secret_value()))
    except httpx.TimeoutException as exc:
        raise PartnerTimeout(f"{partner} did not answer within {config.timeout_s}s",
                             partner=partner) from exc
    except httpx.HTTPError as exc:
        raise PartnerUnavailable(f"{partner} unreachable: {type(exc).__name__}: {exc}",
                                 partner=partner) from exc
    if r.status_code >= 500 or r.status_code in (408, 429):
        raise PartnerUnavailable(f"{partner} answered HTTP {r.status_code}", partner=partner)
    if r.status_code >= 300:
        raise ClientError(f"{partner} refused it: HTTP {r.status_code} {r.text[:200]}",
                          partner=partner)
    try:
        answer = r.json()
    except ValueError:
        raise PartnerUnavailable(f"{partner} answered with no JSON", partner=partner) from None
    if not isinstance(answer, dict) or "code" not in answer:
        raise PartnerUnavailable(f"{partner} answered without a code", partner=partner)
    if str(answer["code"]) != "0":
        raise BusinessRejected(str(answer["code"]), str(answer.get("message") or "refused"),
                               partner=partner)
    return answer.get("data")


class PharmacyClient:
    """One HTTP client for the pharmacies' ERP (one ERP serves every pharmacy here; a
    chain's ERP takes its stores' orders by ``pharmacy_code``)."""

    def __init__(self, config: PartnerConfig, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._http = bounded_client(limit=32, timeout=httpx.Timeout(5.0), transport=transport)

    async def push_order(self, order: dict[str, Any], *, serial: str) -> None:
        await rest_call(self._http, self._config, PHARMACY, "POST", "orders", payload=order,
                        serial=serial)

    async def push_refund(self, refund: dict[str, Any], *, serial: str) -> None:
        await rest_call(self._http, self._config, PHARMACY, "POST", "refunds", payload=refund,
                        serial=serial)

    async def stock(self, pharmacy_code: str) -> list[StockLine]:
        data = await rest_call(self._http, self._config, PHARMACY, "GET", "stock",
                               params={"pharmacy_code": pharmacy_code})
        try:
            return [StockLine.model_validate(x) for x in (data or {}).get("items", [])]
        except (ValidationError, AttributeError, TypeError) as exc:
            raise PartnerUnavailable(f"{PHARMACY} sent malformed stock: {exc}",
                                     partner=PHARMACY) from None

    async def reconciliation(self, pharmacy_code: str, day: date) -> ReconTotals:
        data = await rest_call(self._http, self._config, PHARMACY, "GET", "reconciliation",
                               params={"pharmacy_code": pharmacy_code, "day": day.isoformat()})
        try:
            return ReconTotals.model_validate(data)
        except ValidationError as exc:
            # totals that do not add up are the ERP's error: refused, not retried
            first = exc.errors()[0]
            raise BusinessRejected("TOTALS", f"the ERP's 对账 totals are refused: "
                                   f"{'.'.join(str(p) for p in first['loc'])} "
                                   f"{first['msg']}", partner=PHARMACY) from None

    async def aclose(self) -> None:
        await self._http.aclose()


if TYPE_CHECKING:
    _conforms: type[PharmacyPort] = PharmacyClient
