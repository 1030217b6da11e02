"""``InsurerPort`` over HTTP: JSON, signed with ``partners.insurer.secret``.

The hub signs as ``hub`` (``contracts.signing``, ``X-Partner-*`` headers) with the secret
the insurer also signs its own calls to the hub with; ``X-Hub-Serial`` lets the insurer
drop a repeat. Errors are mapped here, at the boundary:

    timeout                              -> PartnerTimeout       (retried, then DLQ)
    connection errors, 5xx, 408, 429     -> PartnerUnavailable   (retried, then DLQ)
    4xx with ``{"code", "reason"}``      -> BusinessRejected     (refused: not retried)
    other 4xx                            -> ClientError

Paths under ``partners.insurer.endpoint``: ``POST shares``, ``POST financing``, ``POST
clues``, ``GET batches/<kind>/<period>``, ``POST batches/<kind>/<period>``. The client
goes through ``adapters.http.bounded_client`` (the pool-leak guard).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from config.settings import PartnerConfig
from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.serious_illness import PARTNER

if TYPE_CHECKING:
    from adapters.insurer.port import InsurerPort

__all__ = ["SIGNER", "InsurerClient"]

SIGNER = "hub"


class InsurerClient:
    def __init__(self, config: PartnerConfig, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._http = bounded_client(limit=32, timeout=httpx.Timeout(config.timeout_s),
                                    transport=transport)

    async def push_share(self, share: dict[str, Any], *, serial: str) -> None:
        await self._call("POST", "shares", share, serial)

    async def push_financing(self, notice: dict[str, Any], *, serial: str) -> None:
        await self._call("POST", "financing", notice, serial)

    async def push_clue(self, clue: dict[str, Any], *, serial: str) -> None:
        await self._call("POST", "clues", clue, serial)

    async def fetch_batch(self, kind: str, period: str) -> dict[str, Any]:
        return await self._call("GET", f"batches/{kind}/{period}", None, "")

    async def push_batch(self, kind: str, period: str, batch: dict[str, Any], *,
                         serial: str) -> dict[str, Any]:
        return await self._call("POST", f"batches/{kind}/{period}", batch, serial)

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None,
                    serial: str) -> dict[str, Any]:
        cfg = self._config
        url = f"{cfg.endpoint.rstrip('/')}/{path}"
        body = b"" if payload is None else json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        headers = {"Content-Type": "application/json"}
        if serial:
            headers["X-Hub-Serial"] = serial
        try:
            r = await self._http.request(
                method, url, content=body, headers=headers, timeout=cfg.timeout_s,
                auth=SignedAuth(SIGNER, cfg.secret.get_secret_value()))
        except httpx.TimeoutException as exc:
            raise PartnerTimeout(f"the insurer did not answer within {cfg.timeout_s}s",
                                 partner=PARTNER) from exc
        except httpx.HTTPError as exc:
            raise PartnerUnavailable(f"the insurer is unreachable: {type(exc).__name__}",
                                     partner=PARTNER) from exc
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise PartnerUnavailable(f"the insurer answered HTTP {r.status_code}",
                                     partner=PARTNER)
        try:
            answer = r.json() if r.content else {}
        except ValueError:
            answer = {}
        if r.status_code >= 300:
            if isinstance(answer, dict) and answer.get("code"):
                where = f"{answer['field']}: " if answer.get("field") else ""
                raise BusinessRejected(str(answer["code"])[:40],
                                       where + str(answer.get("reason") or "")[:300],
                                       partner=PARTNER)
            raise ClientError(f"the insurer refused it: HTTP {r.status_code} {r.text[:200]}",
                              partner=PARTNER)
        return answer if isinstance(answer, dict) else {}

    async def aclose(self) -> None:
        await self._http.aclose()


if TYPE_CHECKING:
    _conforms: type[InsurerPort] = InsurerClient
