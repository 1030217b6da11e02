"""F7 client: signed pushes to the platform and the departments; failures mapped."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from adapters.difficulty.client import DifficultyClient
from config.settings import PartnerConfig
from contracts.errors import ClientError, PartnerTimeout, PartnerUnavailable
from contracts.signing import PARTNER_HEADERS, check_request

PARTNERS = {
    "assistance": PartnerConfig(protocol="rest", endpoint="http://p/assistance",
                                secret=SecretStr("s-a")),
    "difficulty_veterans": PartnerConfig(protocol="rest", endpoint="http://d/departments/veterans",
                                         secret=SecretStr("s-v")),
}


def _client(handler: object) -> DifficultyClient:
    return DifficultyClient(PARTNERS, transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


async def test_pushes_are_signed_with_the_partners_secret_and_carry_the_serial() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    c = _client(handler)
    await c.push_assistance({"record_id": "r1"}, serial="S1")
    await c.push_status("veterans", {"record_id": "r1"}, serial="S2")
    assert [str(r.url) for r in seen] == ["http://p/assistance/recipients",
                                          "http://d/departments/veterans/status"]
    for r, secret in zip(seen, ("s-a", "s-v"), strict=True):
        lower = {k.lower(): v for k, v in r.headers.items()}
        check_request(secret, method="POST", target=r.url.raw_path.decode(), caller="hub",
                      headers=lower, body=r.content, names=PARTNER_HEADERS)
    assert seen[1].headers["x-hub-serial"] == "S2"


@pytest.mark.parametrize("answer,error", [
    (httpx.Response(503), PartnerUnavailable), (httpx.Response(429), PartnerUnavailable),
    (httpx.Response(400), ClientError), (httpx.ReadTimeout("slow"), PartnerTimeout),
    (httpx.ConnectError("down"), PartnerUnavailable)])
async def test_failures_are_mapped(answer: object, error: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    with pytest.raises(error):
        await _client(handler).push_assistance({"record_id": "r1"}, serial="S")


async def test_an_unconfigured_department_is_refused() -> None:
    with pytest.raises(ClientError):
        await _client(lambda r: httpx.Response(200)).push_status("police", {}, serial="S")
