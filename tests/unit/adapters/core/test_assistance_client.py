"""CoreClient's F7 医疗救助平台 calls (H4002-H4004) against the core simulator in memory:
settlements in canonical form with fen-exact amounts, core's header, the 定点医疗机构;
a malformed answer is core misbehaving."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import httpx
import pytest

from adapters.core.client import CoreClient
from contracts.assistance import Totals
from contracts.errors import BusinessRejected, PartnerUnavailable, ValidationFailed
from contracts.ids import make_id_number
from simulators.core import CoreStore, create_app
from simulators.simkit import Fault, SimState

IDS = [make_id_number(random.Random(80 + i)) for i in range(6)]


@pytest.fixture
def store() -> CoreStore:
    return CoreStore.seed(1, 1, rng_seed=5)


@pytest.fixture
def state() -> SimState:
    return SimState()


@pytest.fixture
async def client(state: SimState, store: CoreStore) -> AsyncIterator[CoreClient]:
    app = create_app(state, store=store)
    async with CoreClient("http://core.test", timeout=5.0,
                          transport=httpx.ASGITransport(app=app)) as c:
        yield c


async def test_expenses_and_a_months_settlements(client: CoreClient, store: CoreStore) -> None:
    got = await client.expenses(IDS[0], date(2026, 1, 1), date(2026, 12, 31))
    want = store.settlements.between(IDS[0], date(2026, 1, 1), date(2026, 12, 31))
    assert [s.setl_id for s in got] == [s.setl_id for s in want] and got
    assert all(isinstance(s.medfee_total, Decimal) for s in got)
    header, rows = await client.month_settlements("202610", IDS)
    assert header == Totals.of(rows)
    assert {s.id_number for s in rows} <= set(IDS)
    store.settlements.bad_headers.add("202610")
    header, rows = await client.month_settlements("202610", IDS)
    assert header.differences(Totals.of(rows)) == [
        f"assistance_pay: {Totals.of(rows).assistance_pay + Decimal('0.01')} != "
        f"{Totals.of(rows).assistance_pay}"]
    listed = await client.institutions()
    assert [i.code for i in listed] == [i["fixmedins_code"]
                                        for i in store.settlements.institutions]


async def test_core_failing_or_misbehaving(client: CoreClient, state: SimState,
                                           store: CoreStore) -> None:
    state.faults.append(Fault(kind="http_5xx", operation="H4002", count=1))
    with pytest.raises(PartnerUnavailable):
        await client.expenses(IDS[0], date(2026, 1, 1), date(2026, 1, 31))
    state.faults.append(Fault(kind="reject", operation="H4003", count=1, code="C9"))
    with pytest.raises(BusinessRejected):
        await client.month_settlements("202610", IDS)
    store.settlements.institutions.append({"fixmedins_code": "Z1"})
    with pytest.raises(ValidationFailed, match="fixmedins_name"):
        await client.institutions()


async def test_a_header_that_is_not_one_is_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"infcode": 0, "output": {"header": {"count": "x"},
                                                                  "records": []}})

    async with CoreClient("http://core.test", timeout=5.0,
                          transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(PartnerUnavailable, match="header"):
            await c.month_settlements("202610", IDS)
