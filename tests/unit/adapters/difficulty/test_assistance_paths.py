"""F7 client: the settlements, the month's data and 阳光惠民's tables go to their paths,
signed with the receiving partner's secret."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from adapters.difficulty.client import DifficultyClient
from config.settings import PartnerConfig
from contracts.signing import PARTNER_HEADERS, check_request

PARTNERS = {
    "assistance": PartnerConfig(protocol="rest", endpoint="http://p/assistance",
                                secret=SecretStr("s-a")),
    "sunshine": PartnerConfig(protocol="rest", endpoint="http://p/sunshine/",
                              secret=SecretStr("s-s")),
}


async def test_paths_and_signatures() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    c = DifficultyClient(PARTNERS, transport=httpx.MockTransport(handler))
    await c.push_settlement({"ref": "r"}, serial="S1")
    await c.push_settlement_data({"month": "2026-10"}, serial="S2")
    await c.push_sunshine({"day": "2026-11-30"}, serial="S3", table="fees")
    await c.push_sunshine({"day": "2026-11-30"}, serial="S4", table="institutions")
    await c.push_sunshine({"day": "2026-11-30"}, serial="S5")
    await c.aclose()
    assert [str(r.url) for r in seen] == [
        "http://p/assistance/settlements", "http://p/assistance/settlement-data",
        "http://p/sunshine/fees", "http://p/sunshine/institutions",
        "http://p/sunshine/recipients"]
    for r, secret in zip(seen, ("s-a", "s-a", "s-s", "s-s", "s-s"), strict=True):
        lower = {k.lower(): v for k, v in r.headers.items()}
        check_request(secret, method="POST", target=r.url.raw_path.decode(), caller="hub",
                      headers=lower, body=r.content, names=PARTNER_HEADERS)
    assert [r.headers["x-hub-serial"] for r in seen] == ["S1", "S2", "S3", "S4", "S5"]
