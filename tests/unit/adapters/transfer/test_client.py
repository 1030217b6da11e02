"""F9 adapter: the national envelope to the platform, signed; every failure mapped at the
boundary (timeout, 5xx, 4xx, infcode -1, a bad page)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from adapters.transfer.client import TransferClient
from config.settings import PartnerConfig
from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.national import NationalResponse
from contracts.signing import PARTNER_HEADERS, check_request

SECRET = "test-transfer-secret"
CFG = PartnerConfig(protocol="http-json", endpoint="http://platform/transfer/api",
                    secret=SecretStr(SECRET), timeout_s=1.0)


def _client(answer: Callable[[httpx.Request], httpx.Response]) -> TransferClient:
    return TransferClient(CFG, transport=httpx.MockTransport(answer))


def _ok(output: dict[str, object]) -> httpx.Response:
    return httpx.Response(200, json=NationalResponse.success(output).model_dump(mode="json"))


async def test_a_pull_is_a_signed_t2401_and_its_page_is_read() -> None:
    seen: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        lower = {k.lower(): v for k, v in request.headers.items()}
        check_request(SECRET, method="POST", target=request.url.raw_path.decode(),
                      caller="hub", headers=lower, body=request.content,
                      names=PARTNER_HEADERS)
        seen.append(json.loads(request.content))
        return _ok({"list": [{"aply_no": "ZY0000001"}], "next_cursor": "1", "more": "0"})

    page = await _client(answer).pull("0", 50)
    assert page.next_cursor == "1" and page.items[0]["aply_no"] == "ZY0000001"
    assert seen[0]["infno"] == "T2401" and seen[0]["input"] == {
        "data": {"admdvs": "320100", "cursor": "0", "page_size": "50"}}


async def test_a_status_push_carries_its_serial() -> None:
    seen: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return _ok({"aply_no": "ZY0000001"})

    payload = {"application_no": "ZY0000001", "status_code": "11", "status_label": "x",
               "reason": "", "reason_field": "", "id_number": "1", "source_division": "320102",
               "target_division": "310104"}
    await _client(answer).push_status(payload, serial="S1")
    body = seen[0]
    assert body["infno"] == "T2402"
    assert body["input"]["serial"] == "S1" and body["input"]["data"]["stas"] == "11"  # type: ignore[index]


@pytest.mark.parametrize(("response", "error"), [
    (httpx.Response(503), PartnerUnavailable),
    (httpx.Response(429), PartnerUnavailable),
    (httpx.Response(400, text="no"), ClientError),
    (httpx.Response(200, text="not json"), PartnerUnavailable),
    (httpx.Response(200, json=NationalResponse.failure("平台繁忙", code="BUSY").model_dump(
        mode="json")), BusinessRejected),
    (_ok({"list": "x", "next_cursor": "1"}), PartnerUnavailable),
])
async def test_failures_are_mapped_at_the_boundary(response: httpx.Response,
                                                   error: type[Exception]) -> None:
    with pytest.raises(error) as e:
        await _client(lambda _: response).pull("0", 10)
    if error is BusinessRejected:
        assert e.value.reason_code == "BUSY"  # type: ignore[attr-defined]


async def test_a_timeout_is_a_partner_timeout() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(PartnerTimeout):
        await _client(answer).pull("0", 10)
