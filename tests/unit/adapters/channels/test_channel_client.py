"""The hub's result push to a channel is signed over the push itself (method, the callback's
target, the channel, the body): the channel simulator verifies it, and the same signed
push pointed at another channel's callback (even one sharing the secret) is refused."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from adapters.channels.client import ChannelClient
from config.settings import ChannelConfig
from simulators.channels import create_app

SHARED = SecretStr("shared-secret-0123456789")
CHANNELS = {name: ChannelConfig(secret=SHARED, callback_url=f"http://ch.test/channels/{name}"
                                                            f"/callback?from=hub")
            for name in ("my_nanjing", "gov_office")}


async def test_a_push_is_signed_for_its_channel_and_callback_only() -> None:
    app = create_app(CHANNELS)
    sent: list[httpx.Request] = []
    transport = httpx.ASGITransport(app=app)

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return await transport.handle_async_request(request)

    client = ChannelClient(CHANNELS, transport=Recording())
    try:
        await client.push_result("my_nanjing", {"application_id": "A1", "status": "completed"},
                                 serial="S1")
    finally:
        await client.aclose()
    assert app.state.inbox.status_of("A1") == "completed"
    assert app.state.inbox.bad_signatures == 0
    [push] = sent
    async with httpx.AsyncClient(transport=transport, base_url="http://ch.test") as http:
        other = await http.post("/channels/gov_office/callback?from=hub", content=push.content,
                                headers=dict(push.headers))
    assert other.status_code == 401 and app.state.inbox.bad_signatures == 1
