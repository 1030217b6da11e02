"""adapters.http.observe_calls: every call through a BoundedTransport is told once when it
ends (status, or None when it raised); an observer's own error never breaks the call."""

from __future__ import annotations

import httpx
import pytest

from adapters.http import bounded_client, observe_calls


async def test_every_call_is_told_once_with_its_status_and_unsubscribing_stops_it() -> None:
    seen: list[tuple[str, int | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/boom":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503 if request.url.path == "/down" else 200, content=b"ok")

    def broken(_r: httpx.Request, _s: float, _st: int | None) -> None:
        raise RuntimeError("an observer's bug")

    off = observe_calls(lambda r, s, st: seen.append((r.url.path, st)))
    off_broken = observe_calls(broken)
    client = bounded_client(limit=2, timeout=2.0, transport=httpx.MockTransport(handler))
    try:
        assert (await client.get("http://p/ok")).status_code == 200
        assert (await client.get("http://p/down")).status_code == 503
        with pytest.raises(httpx.ConnectError):
            await client.get("http://p/boom")
        off()
        await client.get("http://p/after")
    finally:
        off_broken()
        await client.aclose()
    assert seen == [("/ok", 200), ("/down", 503), ("/boom", None)]
