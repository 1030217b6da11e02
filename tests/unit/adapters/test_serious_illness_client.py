"""F15 insurer client against the insurer simulator in process: signed calls, a repeated
serial is one effect, errors mapped at the boundary (5xx retried, a business rejection and a
bad batch refused with field and reason), an orphan 冲销 refused by the insurer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapters.insurer.client import InsurerClient
from config.settings import PartnerConfig
from contracts.errors import BusinessRejected, ClientError, PartnerUnavailable
from simulators.insurer import InsurerBook, InsurerSim, create_app
from simulators.simkit import Fault, SimState

SECRET = "unit-insurer-secret"


def _client(sim: InsurerSim, secret: str = SECRET) -> InsurerClient:
    cfg = PartnerConfig(protocol="rest", endpoint="http://insurer/insurer",
                        secret=SecretStr(secret), timeout_s=2.0)
    return InsurerClient(cfg, transport=httpx.ASGITransport(app=create_app(sim)))


def _share(setl_id: str, kind: str = "settle", orig: str = "") -> dict[str, Any]:
    return {"kind": kind, "setl_id": setl_id, "orig_setl_id": orig,
            "id_number": "11010519491231002X", "settled_at": "2026-11-27 09:00:00",
            "med_type": "21", "serious_illness_pay": "10.00"}


@pytest.fixture
def sim() -> InsurerSim:
    return InsurerSim(SimState(), InsurerBook(), secret=SECRET)


async def test_a_share_twice_under_one_serial_is_one_effect(sim: InsurerSim) -> None:
    c = _client(sim)
    await c.push_share(_share("S1"), serial="a1")
    await c.push_share(_share("S1"), serial="a1")
    await c.push_share(_share("R1", "reverse", "S1"), serial="a2")
    assert sim.state.log.effects["share:S1"] == 1 and sim.state.log.replays == 1
    assert sim.book.open_shares() == []
    with pytest.raises(BusinessRejected, match="orig_setl_id"):
        await c.push_share(_share("R2", "reverse", "NOPE"), serial="a3")
    assert sim.book.orphans == 1
    await c.aclose()


async def test_faults_map_to_retried_and_refused_errors(sim: InsurerSim) -> None:
    c = _client(sim)
    sim.state.faults += [Fault(kind="http_5xx", match="S2", count=1),
                         Fault(kind="reject", match="S3", code="E_POLICY", text="not covered"),
                         Fault(kind="duplicate", match="S4", count=1)]
    with pytest.raises(PartnerUnavailable):
        await c.push_share(_share("S2"), serial="b1")
    await c.push_share(_share("S2"), serial="b1")
    with pytest.raises(BusinessRejected) as got:
        await c.push_share(_share("S3"), serial="b2")
    assert got.value.public_code == "E_POLICY"
    with pytest.raises(PartnerUnavailable):  # took it, the answer was lost
        await c.push_share(_share("S4"), serial="b3")
    await c.push_share(_share("S4"), serial="b3")
    assert sim.state.log.effects["share:S4"] == 1 and sim.state.log.effects["share:S3"] == 0
    await c.aclose()


async def test_batches_are_checked_both_ways(sim: InsurerSim) -> None:
    c = _client(sim)
    await c.push_share(_share("S1"), serial="c1")
    got = await c.fetch_batch("claims", "2026Q4")
    assert got["header"] == {"kind": "claims", "period": "2026Q4", "count": 1,
                             "total": "10.00"}
    sim.book.bad_batches.add("claims:2026Q4")
    assert (await c.fetch_batch("claims", "2026Q4"))["header"]["total"] == "10.01"
    bad = {"header": {"count": 1, "total": "5.00"}, "rows": [{"serious_illness_pay": "4.00"}]}
    with pytest.raises(BusinessRejected, match=r"header\.total"):
        await c.push_batch("clearing", "2026", bad, serial="c2")
    ok = {"header": {"count": 1, "total": "4.00"}, "rows": [{"serious_illness_pay": "4.00"}]}
    assert (await c.push_batch("clearing", "2026", ok, serial="c3"))["total"] == "4.00"
    assert sim.state.log.effects["batch:clearing:2026"] == 1
    await c.aclose()


async def test_a_call_not_signed_with_the_insurers_secret_is_refused(sim: InsurerSim) -> None:
    c = _client(sim, secret="wrong")
    with pytest.raises(ClientError, match="HTTP 401") as got:
        await c.push_clue({"clue_id": "C1"}, serial="d1")
    assert sim.book.bad_signatures == 1 and sim.book.clues == {}
    assert got.value.partner == "insurer"
    await c.aclose()
