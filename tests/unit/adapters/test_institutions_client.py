"""F14's clients: a failing HIS behind the gateway is blamed on its own institution
(``inst_<code>``), so the runtime counts the failure against that institution's breaker and
not against the lane's shared one; the core ledger's failures stay the ledger's."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from pydantic import SecretStr

from adapters.institutions.client import InstitutionsClient, LedgerClient
from config.settings import PartnerConfig
from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.institution_recon import partner_of

CODE = "H32010200001"


def _config() -> PartnerConfig:
    return PartnerConfig(protocol="http-json", endpoint="http://his.test/gw",
                         secret=SecretStr("s"), timeout_s=1.0)


def _answer(status: int, body: dict[str, object] | None = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == (f"/gw/{CODE}/national" if "gw" in str(request.url)
                                    else "/ledger")
        return httpx.Response(status, json=body or {})
    return httpx.MockTransport(handle)


async def test_a_his_down_is_blamed_on_its_institution() -> None:
    client = InstitutionsClient(_config(), transport=_answer(503))
    with pytest.raises(PartnerUnavailable) as got:
        await client.totals(CODE, date(2026, 11, 30))
    assert got.value.partner == partner_of(CODE) == "inst_h32010200001"
    await client.aclose()


async def test_a_his_refusal_names_its_institution_too() -> None:
    client = InstitutionsClient(_config(), transport=_answer(
        200, {"infcode": -1, "err_msg": "settlement already cleared", "output": {}}))
    with pytest.raises(BusinessRejected) as got:
        await client.reverse(CODE, {"setl_id": "S1"}, serial="x1")
    assert got.value.partner == partner_of(CODE)
    assert "already cleared" in got.value.reason
    await client.aclose()


async def test_the_ledger_down_is_the_ledgers() -> None:
    config = _config().model_copy(update={"endpoint": "http://ledger.test/ledger"})
    client = LedgerClient("core_ledger", config, transport=_answer(503))
    with pytest.raises(PartnerUnavailable) as got:
        await client.totals(CODE, date(2026, 11, 30))
    assert got.value.partner == "core_ledger"
    await client.aclose()
