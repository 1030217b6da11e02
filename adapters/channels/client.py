"""ChannelPort over HTTP: results pushed to each channel's callback URL, signed.

The body is JSON; the headers carry the same HMAC-SHA256 scheme the channels
use towards the hub (``contracts.signing``: ``X-Channel-Timestamp``, ``-Nonce``,
``-Signature`` over the push's method, callback target, channel name, timestamp,
nonce and body digest), keyed with the channel's secret, so a channel verifies the
hub exactly as the hub verifies it. Errors are mapped
here, at the boundary:

    timeout                         -> PartnerTimeout
    connection errors, 5xx, 429     -> PartnerUnavailable   (retried, then DLQ)
    other 4xx                       -> ClientError          (the channel refuses: DLQ)
    channel not configured / no URL -> ClientError
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from config.settings import ChannelConfig
from contracts.errors import ClientError, PartnerTimeout, PartnerUnavailable
from contracts.signing import CHANNEL_HEADERS

if TYPE_CHECKING:
    from adapters.channels.port import ChannelPort

__all__ = ["ChannelClient"]


class ChannelClient:
    """One HTTP client for all channels; each push is signed with its channel's secret."""

    def __init__(self, channels: Mapping[str, ChannelConfig], *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._channels = dict(channels)
        self._http = bounded_client(limit=100, timeout=httpx.Timeout(5.0),
                                    transport=transport)

    async def push_result(self, channel: str, result: dict[str, Any], *, serial: str) -> None:
        partner = f"channel.{channel}"
        config = self._channels.get(channel)
        if config is None or not config.callback_url:
            raise ClientError(f"channel {channel} has no callback_url configured",
                              partner=partner)
        body = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Serial": serial}
        signer = SignedAuth(channel, config.secret.get_secret_value(), names=CHANNEL_HEADERS)
        try:
            r = await self._http.post(config.callback_url, content=body, headers=headers,
                                      auth=signer, timeout=config.timeout_s)
        except httpx.TimeoutException as exc:
            raise PartnerTimeout(f"{channel} did not answer within {config.timeout_s}s",
                                 partner=partner) from exc
        except httpx.HTTPError as exc:
            raise PartnerUnavailable(f"{channel} unreachable: {type(exc).__name__}: {exc}",
                                     partner=partner) from exc
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise PartnerUnavailable(f"{channel} answered HTTP {r.status_code}", partner=partner)
        if r.status_code >= 300:
            raise ClientError(f"{channel} refused the result: HTTP {r.status_code} "
                              f"{r.text[:200]}", partner=partner)

    async def aclose(self) -> None:
        await self._http.aclose()


if TYPE_CHECKING:
    _conforms: type[ChannelPort] = ChannelClient
