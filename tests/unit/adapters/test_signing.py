"""``adapters.signing``: what ``SignedAuth`` signs is exactly what is sent, and
``verify_signed`` takes it once (nonces scoped per caller, a broken store is transient)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.signing import MemoryNonceStore, SignedAuth, verify_signed
from contracts.errors import PartnerUnavailable
from contracts.signing import CHANNEL_HEADERS, PARTNER_HEADERS, SignatureRefused

SECRET = "partner-secret-0123"


async def _sent(url: str, auth: SignedAuth, **kw: object) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await http.post(url, auth=auth, **kw)  # type: ignore[arg-type]
    return seen[0]


async def _verify(request: httpx.Request, nonces: MemoryNonceStore, *, caller: str = "core",
                  target: str | None = None) -> None:
    await verify_signed(caller, SECRET, method=request.method,
                        target=target or request.url.raw_path.decode(), headers=request.headers,
                        body=request.content, nonces=nonces, names=PARTNER_HEADERS,
                        scope=f"partner:{caller}")


async def test_a_signed_request_verifies_once_with_its_path_query_and_body() -> None:
    request = await _sent("http://hub/partners/core/events?x=%C3%A9&y=1",
                          SignedAuth("core", SECRET), json={"a": "赵"})
    assert request.headers["x-partner"] == "core"
    nonces = MemoryNonceStore()
    await _verify(request, nonces)
    with pytest.raises(SignatureRefused) as e:
        await _verify(request, nonces)
    assert e.value.field == PARTNER_HEADERS.nonce
    with pytest.raises(SignatureRefused):
        await _verify(request, MemoryNonceStore(), target="/partners/core/events")


async def test_a_streamed_body_is_signed_as_sent() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    request = await _sent("http://hub/x", SignedAuth("core", SECRET), content=chunks())
    assert request.content == b'{"a":1}'
    await _verify(request, MemoryNonceStore())


async def test_channel_headers_carry_no_caller_header() -> None:
    request = await _sent("http://hub/channels/hrss/applications",
                          SignedAuth("hrss", SECRET, names=CHANNEL_HEADERS, clock=lambda: 5.0),
                          content=b"{}")
    assert "x-partner" not in request.headers
    assert request.headers[CHANNEL_HEADERS.timestamp] == "5"


async def test_nonces_are_scoped_by_caller() -> None:
    nonces = MemoryNonceStore()
    assert await nonces.seen("partner:core", "n" * 16, 10) is False
    assert await nonces.seen("partner:tax", "n" * 16, 10) is False
    assert await nonces.seen("partner:core", "n" * 16, 10) is True


async def test_a_broken_nonce_store_is_transient() -> None:
    class Down:
        async def seen(self, channel: str, nonce: str, ttl_s: int) -> bool:
            raise ConnectionError("redis gone")

    request = await _sent("http://hub/x", SignedAuth("core", SECRET), content=b"{}")
    with pytest.raises(PartnerUnavailable):
        await verify_signed("core", SECRET, method="POST", target="/x", headers=request.headers,
                            body=b"{}", nonces=Down(), names=PARTNER_HEADERS)
