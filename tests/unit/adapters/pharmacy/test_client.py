"""F11 clients: the ERP's and the supervision platform's calls signed with the partner's
secret and carrying the serial; answers and failures mapped (a refusal code is
BusinessRejected, 5xx/timeouts transient); the ERP's 对账 totals that do not add up are
refused."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapters.pharmacy.client import PharmacyClient
from adapters.supervision.client import SupervisionClient
from config.settings import PartnerConfig
from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.signing import PARTNER_HEADERS, check_request

ERP = PartnerConfig(protocol="rest", endpoint="http://erp/erp", secret=SecretStr("s-erp"))
SUP = PartnerConfig(protocol="rest", endpoint="http://sup/supervision",
                    secret=SecretStr("s-sup"))


def _erp(handler: Any) -> PharmacyClient:
    return PharmacyClient(ERP, transport=httpx.MockTransport(handler))


async def test_calls_are_signed_and_carry_the_serial() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/stock"):
            return httpx.Response(200, json={"code": "0", "data": {"items": [
                {"drug_code": "XN02BEA001A001010100002", "quantity": 7}]}})
        return httpx.Response(200, json={"code": "0", "message": "ok"})

    c = _erp(handler)
    await c.push_order({"order_no": "ORDER-0001"}, serial="S1")
    lines = await c.stock("P32010200001")
    assert [(x.drug_code, x.quantity) for x in lines] == [("XN02BEA001A001010100002", 7)]
    s = SupervisionClient(SUP, transport=httpx.MockTransport(handler))
    await s.push({"kind": "order", "order_no": "ORDER-0001"}, serial="S2")
    assert [str(r.url) for r in seen] == ["http://erp/erp/orders",
                                          "http://erp/erp/stock?pharmacy_code=P32010200001",
                                          "http://sup/supervision/records"]
    assert seen[0].headers["x-hub-serial"] == "S1" and seen[2].headers["x-hub-serial"] == "S2"
    for r, secret in zip(seen, ("s-erp", "s-erp", "s-sup"), strict=True):
        lower = {k.lower(): v for k, v in r.headers.items()}
        check_request(secret, method=r.method, target=r.url.raw_path.decode(), caller="hub",
                      headers=lower, body=r.content, names=PARTNER_HEADERS)
    await c.aclose()
    await s.aclose()


@pytest.mark.parametrize(("answer", "error"), [
    (httpx.Response(200, json={"code": "E102", "message": "药店缺货"}), BusinessRejected),
    (httpx.Response(503), PartnerUnavailable),
    (httpx.Response(429), PartnerUnavailable),
    (httpx.Response(400, text="bad"), ClientError),
    (httpx.Response(200, text="not json"), PartnerUnavailable),
])
async def test_failures_are_mapped(answer: httpx.Response, error: type[Exception]) -> None:
    c = _erp(lambda request: answer)
    with pytest.raises(error):
        await c.push_order({"order_no": "ORDER-0001"}, serial="S1")
    await c.aclose()


async def test_a_timeout_is_transient_and_bad_totals_are_refused() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    c = _erp(slow)
    with pytest.raises(PartnerTimeout):
        await c.push_refund({"order_no": "ORDER-0001"}, serial="S1")
    await c.aclose()
    c = _erp(lambda request: httpx.Response(200, json={"code": "0", "data": {
        "pharmacy_code": "P32010200001", "day": "2026-11-30", "sales": 1,
        "sales_amount": "9.99", "refunds": 0, "refund_amount": "0",
        "lines": [{"order_no": "ORDER-0001", "kind": "sale", "amount": "10.00"}]}}))
    with pytest.raises(BusinessRejected) as exc:
        await c.reconciliation("P32010200001", date(2026, 11, 30))
    assert "sales_amount" in exc.value.reason
    await c.aclose()
