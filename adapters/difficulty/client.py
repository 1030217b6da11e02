"""``DifficultyPort`` over HTTP: JSON pushes, signed with the partner's secret.

The hub signs as ``hub`` with the receiving partner's secret
(``partners.<name>.secret``: ``assistance``, ``sunshine``, ``difficulty_<department>``; the key
that partner signs its own calls to the hub
with), in the one HMAC scheme (``contracts.signing``, ``X-Partner-*`` headers), so a
department verifies the hub as the hub verifies it. ``X-Hub-Serial`` lets the
receiver drop a repeat. Errors are mapped here, at the boundary:

    timeout                              -> PartnerTimeout
    connection errors, 5xx, 408, 429     -> PartnerUnavailable   (retried, then DLQ)
    other 4xx                            -> ClientError          (refused: not retried)
    a partner not configured             -> ClientError

Paths: the platform takes ``POST <endpoint>/recipients``, a recipient's settlement at
``POST <endpoint>/settlements`` (结算费用同步) and a month's 医疗救助结算数据 in pages at
``POST <endpoint>/settlement-data``; a department takes its status at ``POST
<endpoint>/status``; 阳光惠民 (``sunshine``) its tables' pages at ``POST
<endpoint>/recipients``, ``/fees`` (救助费用) and ``/institutions`` (机构).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from config.settings import PartnerConfig
from contracts.difficulty import ASSISTANCE, SUNSHINE, partner_of
from contracts.errors import ClientError, PartnerTimeout, PartnerUnavailable

if TYPE_CHECKING:
    from adapters.difficulty.port import DifficultyPort

from adapters.difficulty.port import SunshineTable

__all__ = ["SIGNER", "DifficultyClient"]

SIGNER = "hub"


class DifficultyClient:
    """One HTTP client for the platform and the departments."""

    def __init__(self, partners: Mapping[str, PartnerConfig], *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._partners = dict(partners)
        self._http = bounded_client(limit=64, timeout=httpx.Timeout(5.0), transport=transport)

    async def push_assistance(self, record: dict[str, Any], *, serial: str) -> None:
        await self._post(ASSISTANCE, "recipients", record, serial)

    async def push_sunshine(self, page: dict[str, Any], *, serial: str,
                            table: SunshineTable = "recipients") -> None:
        await self._post(SUNSHINE, table, page, serial)

    async def push_settlement(self, record: dict[str, Any], *, serial: str) -> None:
        await self._post(ASSISTANCE, "settlements", record, serial)

    async def push_settlement_data(self, page: dict[str, Any], *, serial: str) -> None:
        await self._post(ASSISTANCE, "settlement-data", page, serial)

    async def push_status(self, department: str, status: dict[str, Any], *,
                          serial: str) -> None:
        await self._post(partner_of(department), "status", status, serial)

    async def _post(self, partner: str, path: str, payload: dict[str, Any], serial: str) -> None:
        config = self._partners.get(partner)
        if config is None:
            raise ClientError(f"partner {partner} is not configured", partner=partner)
        url = f"{config.endpoint.rstrip('/')}/{path}"
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"),
                          default=str).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Serial": serial}
        try:
            r = await self._http.post(url, content=body, headers=headers, timeout=config.timeout_s,
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

    async def aclose(self) -> None:
        await self._http.aclose()


if TYPE_CHECKING:
    _conforms: type[DifficultyPort] = DifficultyClient
