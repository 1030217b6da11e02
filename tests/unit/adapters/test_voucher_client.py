"""F13 client at its boundary: the national envelope signed as the hub with the serial;
HTTP and infcode failures mapped to the hub's error tree; the platform key's shape is
checked at start; the rate limiter's window."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapters.prescription.crypto import SmKeyError, sm2_generate, sm2_sign
from adapters.voucher.client import RedisRateLimiter, VoucherClient, sm2_check
from config.settings import PartnerConfig
from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.voucher import CORE

CFG = {CORE: PartnerConfig(protocol="http-json", endpoint="http://core.test/core/api",
                           secret=SecretStr("s3cret"), timeout_s=1.0)}


def _client(answer: Any) -> tuple[VoucherClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    return VoucherClient(CFG, transport=httpx.MockTransport(handler)), seen


async def test_a_call_is_a_signed_national_request_and_gives_the_output() -> None:
    client, seen = _client({"infcode": "0", "output": {"setlinfo": {"setl_id": "S1"}}})
    out = await client.call(CORE, "2207", {"data": {"a": 1}}, serial="abc",
                            insuplc_admdvs="510100")
    assert out == {"setlinfo": {"setl_id": "S1"}}
    body = json.loads(seen[0].content)
    assert (body["infno"], body["insuplc_admdvs"], body["input"]) == ("2207", "510100",
                                                                      {"data": {"a": 1}})
    assert seen[0].headers["X-Hub-Serial"] == "abc" and seen[0].headers["X-Partner"] == "hub"
    assert seen[0].headers["X-Partner-Signature"]
    await client.aclose()


@pytest.mark.parametrize(("answer", "error"), [
    (httpx.Response(503), PartnerUnavailable), (httpx.Response(429), PartnerUnavailable),
    (httpx.Response(400, text="no"), ClientError),
    (httpx.ReadTimeout("slow"), PartnerTimeout), (httpx.ConnectError("down"), PartnerUnavailable),
    (httpx.Response(200, text="not json"), PartnerUnavailable),
    ({"infcode": -1, "err_msg": "就诊信息不存在", "output": {"err_code": "E201"}},
     BusinessRejected)])
async def test_failures_map_to_the_error_tree(answer: Any, error: type[Exception]) -> None:
    client, _ = _client(answer)
    with pytest.raises(error) as e:
        await client.call(CORE, "2207", {})
    if isinstance(e.value, BusinessRejected):
        assert (e.value.reason_code, e.value.reason_text) == ("E201", "就诊信息不存在")
    await client.aclose()


async def test_an_unconfigured_partner_is_a_client_error() -> None:
    client, seen = _client({})
    with pytest.raises(ClientError):
        await client.call("medtax", "V3101", {})
    assert seen == []
    await client.aclose()


def test_the_platform_key_is_checked_and_verifies_its_signatures() -> None:
    private, public = sm2_generate()
    check = sm2_check(public)
    assert check(b"m", sm2_sign(private, public, b"m")) and not check(b"n", b"\1" * 64)
    assert not sm2_check("")(b"m", sm2_sign(private, public, b"m"))
    with pytest.raises(SmKeyError):
        sm2_check("04abc")


class FakeRedis:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.ttl: dict[str, int] = {}

    async def incr(self, name: str) -> int:
        self.counts[name] = self.counts.get(name, 0) + 1
        return self.counts[name]

    async def expire(self, name: str, time: int) -> bool:
        self.ttl[name] = time
        return True


async def test_the_rate_limiter_counts_per_caller() -> None:
    redis = FakeRedis()
    now = [1_800_000_015.0]
    limiter = RedisRateLimiter(redis, prefix="t:", clock=lambda: now[0])
    got = [await limiter.hit("kiosk", "K1", 2) for _ in range(3)]
    assert got == [(True, 45), (True, 45), (False, 45)]
    assert (await limiter.hit("kiosk", "K2", 2))[0]  # another device has its own count
    now[0] += 60  # the next window starts afresh
    assert await limiter.hit("kiosk", "K1", 2) == (True, 45)
    assert set(redis.ttl.values()) == {61}
