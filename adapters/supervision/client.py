"""``SupervisionPort`` over HTTP: the 医保监管平台's REST interface (``POST /records``),
signed as ``hub`` with ``partners.supervision.secret``; ``X-Hub-Serial`` lets the platform
drop a repeat. Answers and errors are mapped as for the pharmacy ERP
(``adapters.pharmacy.client.rest_call``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from adapters.http import bounded_client
from adapters.pharmacy.client import rest_call
from config.settings import PartnerConfig
from contracts.drugs import SUPERVISION

if TYPE_CHECKING:
    from adapters.supervision.port import SupervisionPort

__all__ = ["SupervisionClient"]


class SupervisionClient:
    def __init__(self, config: PartnerConfig, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._http = bounded_client(limit=32, timeout=httpx.Timeout(5.0), transport=transport)

    async def push(self, record: dict[str, Any], *, serial: str) -> None:
        await rest_call(self._http, self._config, SUPERVISION, "POST", "records",
                        payload=record, serial=serial)

    async def aclose(self) -> None:
        await self._http.aclose()


if TYPE_CHECKING:
    _conforms: type[SupervisionPort] = SupervisionClient
