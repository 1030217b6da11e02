"""``TransferPlatformPort`` over HTTP: the national envelope as JSON, signed by the hub.

One endpoint (``partners.transfer.endpoint``) takes every call, as core's does: a
``NationalRequest`` with ``infno`` T2401 (pull a page) or T2402 (status back). The hub
signs each request as ``hub`` with ``partners.transfer.secret`` (the ``X-Partner-*`` HMAC
scheme of ``contracts.signing``; the envelope's own ``cainfo`` stays empty until the
platform's SM2 certificate is issued). Errors are mapped here, at the boundary:

    timeout                                     -> PartnerTimeout
    connection errors, 5xx, 408, 429            -> PartnerUnavailable   (retried, then DLQ)
    an answer that is not the envelope / page   -> PartnerUnavailable
    other 4xx                                   -> ClientError          (not retried)
    infcode -1                                  -> BusinessRejected(output.err_code, err_msg)
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import httpx

from adapters.http import bounded_client
from adapters.national import post_national
from adapters.signing import SignedAuth
from config.settings import PartnerConfig
from contracts.errors import (
    PartnerUnavailable,
    ValidationFailed,
)
from contracts.national import (
    NationalRequest,
    NationalResponse,
    format_inf_time,
    make_msgid,
    now_cst,
)
from contracts.transfer import (
    INFNO_PULL,
    INFNO_STATUS,
    NANJING,
    PARTNER,
    PullPage,
    parse_pull_output,
    pull_input,
    status_input,
)

if TYPE_CHECKING:
    from adapters.transfer.port import TransferPlatformPort

__all__ = ["SIGNER", "TransferClient"]

SIGNER = "hub"
_RECEIVER = "NHSATRANS"


class TransferClient:
    """Talks to the national transfer platform; ``transport`` replaces the network in tests."""

    def __init__(self, config: PartnerConfig, *, sender: str = "NJYBHUB00009",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        make_msgid(sender, now_cst(), 0)  # fail fast on a bad sender code
        self._config = config
        self._sender = sender
        self._seq = itertools.count()
        self._auth = SignedAuth(SIGNER, config.secret.get_secret_value())
        self._http = bounded_client(limit=16, timeout=httpx.Timeout(config.timeout_s),
                                    transport=transport)

    async def pull(self, cursor: str, page_size: int) -> PullPage:
        response = await self._call(INFNO_PULL, pull_input(cursor, page_size))
        try:
            return parse_pull_output(response.output, cursor)
        except ValueError as exc:
            raise PartnerUnavailable(f"transfer platform sent a bad page: {exc}",
                                     partner=PARTNER) from exc

    async def push_status(self, payload: dict[str, Any], *, serial: str,
                          application: dict[str, Any] | None = None) -> None:
        if not serial:
            raise ValidationFailed([("serial", "required")], partner=PARTNER)
        await self._call(INFNO_STATUS, status_input(payload, serial=serial,
                                                    application=application))

    async def aclose(self) -> None:
        await self._http.aclose()

    def _request(self, infno: str, input: dict[str, Any]) -> NationalRequest:
        now = now_cst()
        return NationalRequest(infno=infno, msgid=make_msgid(self._sender, now,
                                                             next(self._seq) % 10000),
                               mdtrtarea_admvs=NANJING, insuplc_admdvs=NANJING,
                               recer_sys_code=_RECEIVER, opter="hub", opter_name="集成平台",
                               inf_time=format_inf_time(now), input=input)

    async def _call(self, infno: str, input: dict[str, Any]) -> NationalResponse:
        request = self._request(infno, input)
        t = self._config.timeout_s
        return await post_national(
            self._http, self._config.endpoint, who="transfer platform", infno=infno,
            partner=PARTNER, reject_code="TRANSFER", timeout_s=t, msgid=request.msgid,
            json=request.to_wire(), auth=self._auth)


if TYPE_CHECKING:
    _conforms: type[TransferPlatformPort] = TransferClient
