"""UnionPort over HTTP: notices POSTed to ``<endpoint>/union/notices``, signed.

The hub signs with the partner scheme (``contracts.signing``: ``X-Partner`` =
``trade_union``, timestamp, nonce, HMAC-SHA256 with ``partners.trade_union.secret``),
the same secret the union signs its own calls to the hub with, so each side
verifies the other the same way. Errors are mapped here, at the boundary:

    timeout                         -> PartnerTimeout
    connection errors, 5xx, 429     -> PartnerUnavailable   (retried, then DLQ)
    other 4xx                       -> ClientError          (the union refuses: DLQ)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import httpx

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from contracts.errors import ClientError, PartnerTimeout, PartnerUnavailable

if TYPE_CHECKING:
    from adapters.union.port import UnionPort

__all__ = ["PARTNER", "UnionClient"]

PARTNER: Final = "trade_union"


class UnionClient:
    """One HTTP client for the union's notice endpoint."""

    def __init__(self, endpoint: str, secret: str, *, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._url = endpoint.rstrip("/") + "/union/notices"
        self._auth = SignedAuth(PARTNER, secret)
        self._timeout = timeout
        self._http = bounded_client(limit=20, timeout=httpx.Timeout(timeout),
                                    transport=transport)

    async def deliver(self, notice: dict[str, Any], *, serial: str) -> None:
        body = json.dumps(notice, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Serial": serial}
        try:
            r = await self._http.post(self._url, content=body, headers=headers,
                                      auth=self._auth, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise PartnerTimeout(f"the union did not answer within {self._timeout}s",
                                 partner=PARTNER) from exc
        except httpx.HTTPError as exc:
            raise PartnerUnavailable(f"the union is unreachable: {type(exc).__name__}: {exc}",
                                     partner=PARTNER) from exc
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise PartnerUnavailable(f"the union answered HTTP {r.status_code}",
                                     partner=PARTNER)
        if r.status_code >= 300:
            raise ClientError(f"the union refused the notice: HTTP {r.status_code} "
                              f"{r.text[:200]}", partner=PARTNER)

    async def aclose(self) -> None:
        await self._http.aclose()


if TYPE_CHECKING:
    _conforms: type[UnionPort] = UnionClient
