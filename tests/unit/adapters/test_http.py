"""adapters.http: requests wait in the hub's admission, so httpcore's pool never leaks."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.http import BoundedTransport, bounded_client


@contextlib.asynccontextmanager
async def _slow_server(max_delay_s: float) -> AsyncIterator[str]:
    """A tiny HTTP/1.1 keep-alive server answering each request after a random delay."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = await reader.read(4096)
                    if not chunk:
                        return
                    head += chunk
                await asyncio.sleep(random.uniform(0, max_delay_s))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def _transport(client: httpx.AsyncClient) -> BoundedTransport:
    t = client._transport
    assert isinstance(t, BoundedTransport)
    return t


async def test_a_burst_with_timeouts_and_cancellations_leaves_every_slot_free() -> None:
    """The burst that wedged fault test h: 10x more callers than connections, short
    waits, callers cancelled mid-wait. Afterwards nothing is held and calls work."""
    random.seed(7)
    async with _slow_server(0.05) as url:
        client = bounded_client(limit=5, timeout=httpx.Timeout(2.0, pool=0.1))
        outcomes: list[str] = []

        async def one() -> None:
            try:
                r = await client.get(url)
                outcomes.append(str(r.status_code))
            except httpx.PoolTimeout:
                outcomes.append("pool-timeout")

        tasks = [asyncio.create_task(one()) for _ in range(200)]
        await asyncio.sleep(0.05)
        for t in tasks[::3]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert "pool-timeout" in outcomes and "200" in outcomes  # the burst did contend
        assert _transport(client).in_flight == 0
        pool = client._transport._inner._pool  # type: ignore[attr-defined]
        assert all(not repr(c).endswith("[CONNECTING]>") for c in pool.connections)
        answers = await asyncio.gather(*(client.get(url) for _ in range(10)))
        assert [r.status_code for r in answers] == [200] * 10
        await client.aclose()


async def test_no_more_than_limit_requests_reach_the_network_at_once() -> None:
    live = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.01)
        live -= 1
        return httpx.Response(200, text="ok")

    client = bounded_client(limit=3, timeout=5.0, transport=httpx.MockTransport(handler))
    await asyncio.gather(*(client.get("http://x/") for _ in range(30)))
    assert peak == 3
    assert _transport(client).in_flight == 0
    await client.aclose()


class _Body(httpx.AsyncByteStream):
    """A body still on the wire (as the network transport returns it)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"ok"


async def test_a_streamed_response_holds_its_slot_until_closed() -> None:
    client = bounded_client(limit=1, timeout=httpx.Timeout(5.0, pool=0.05),
                            transport=httpx.MockTransport(
                                lambda r: httpx.Response(200, stream=_Body())))
    async with client.stream("GET", "http://x/"):
        assert _transport(client).in_flight == 1
        with pytest.raises(httpx.PoolTimeout, match="all 1 connections busy"):
            await client.get("http://x/")
    assert _transport(client).in_flight == 0
    assert (await client.get("http://x/")).status_code == 200
    await client.aclose()


async def test_a_failed_request_frees_its_slot() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = bounded_client(limit=1, timeout=1.0, transport=httpx.MockTransport(boom))
    for _ in range(3):
        with pytest.raises(httpx.ConnectError):
            await client.get("http://x/")
    assert _transport(client).in_flight == 0
    await client.aclose()
