"""Core's list queries page: the client asks ``page_size`` rows at a time until a short
page, core's ``total`` or its own limit, counted at the core simulator; a core that does not
page is taken whole; a page that breaks the rules is core misbehaving (transient)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.core.client import CoreClient
from contracts.errors import PartnerUnavailable, ValidationFailed
from contracts.warnings import SelfPaid
from simulators.core import CoreStore, create_app, paged
from simulators.simkit import SimState

BASE = "http://core.test"


@pytest.fixture
def store() -> CoreStore:
    return CoreStore.seed(5, 25, rng_seed=11)  # 25 employees


async def _client(state: SimState, store: CoreStore, page_size: int
                  ) -> AsyncIterator[CoreClient]:
    app = create_app(state, store=store)
    async with CoreClient(BASE, timeout=5.0, transport=httpx.ASGITransport(app=app),
                          page_size=page_size) as c:
        yield c


@pytest.mark.parametrize(("page_size", "calls"), [(10, 3), (5, 5), (25, 1), (2000, 1)])
async def test_the_snapshot_is_read_page_by_page_whole_and_once(
        store: CoreStore, page_size: int, calls: int) -> None:
    state = SimState()
    want = store.snapshot("employee")
    assert len(want) == 25
    async for client in _client(state, store, page_size):
        got = await client.snapshot("employee")
    assert got == want  # every record, in core's order, none twice
    # 25 rows in pages of 5 end on core's total: no sixth, empty page is asked for
    assert state.log.calls == calls


async def test_a_limit_stops_asking_once_it_is_reached(store: CoreStore) -> None:
    state = SimState()
    async for client in _client(state, store, 5):
        got = await client.snapshot("employee", limit=12)
    assert got == store.snapshot("employee")[:12]
    assert state.log.calls == 3


async def test_the_other_list_queries_page_too(store: CoreStore) -> None:
    store.self_paid[2026] = [
        SelfPaid(id_number=p.id_number, name=p.name, rural=False, insurance="employee",
                 self_paid=Decimal(i)) for i, p in enumerate(store.persons.values())]
    state = SimState()
    async for client in _client(state, store, 4):
        paid = await client.yearly_self_paid(2026, "202611")
        calls = state.log.calls
        drugs = await client.drug_catalogue()
    assert [p.id_number for p in paid] == [p.id_number for p in store.persons.values()]
    assert calls == 7  # 25 rows in pages of 4
    assert len(drugs) == len(store.drugs) > 4
    assert state.log.calls - calls == -(-len(store.drugs) // 4)  # pages of 4, rounded up


def _core(answer: Any) -> httpx.MockTransport:
    """A core answering every call with ``answer(input)`` as its output."""
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json={"infcode": 0, "output": answer(body["input"])})
    return httpx.MockTransport(handle)


async def test_a_core_that_does_not_page_is_taken_whole() -> None:
    rows = [{"id_number": str(i), "name": "x", "status": "1"} for i in range(7)]
    asked: list[dict[str, Any]] = []

    def answer(input: dict[str, Any]) -> dict[str, Any]:
        asked.append(input)
        return {"records": rows}  # ignores page_num and page_size

    async with CoreClient(BASE, timeout=5.0, transport=_core(answer), page_size=3) as c:
        assert await c.snapshot("flexible") == rows
    assert [a["page_num"] for a in asked] == [1]


async def test_a_later_page_larger_than_asked_is_core_misbehaving() -> None:
    def answer(input: dict[str, Any]) -> dict[str, Any]:
        n = 3 if input["page_num"] == 1 else 9
        return {"records": [{"id_number": str(i)} for i in range(n)]}

    async with CoreClient(BASE, timeout=5.0, transport=_core(answer), page_size=3) as c:
        with pytest.raises(PartnerUnavailable, match="page 2 of H1105 with 9 rows"):
            await c.snapshot("employee")


async def test_a_later_page_without_its_list_is_core_misbehaving() -> None:
    def answer(input: dict[str, Any]) -> dict[str, Any]:
        return {"records": [{"id_number": "1"}] * 3} if input["page_num"] == 1 else {}

    async with CoreClient(BASE, timeout=5.0, transport=_core(answer), page_size=3) as c:
        with pytest.raises(PartnerUnavailable, match="page 2 of H1107 without output.records"):
            await c.yearly_self_paid(2026, "202611")


async def test_a_first_answer_without_its_list_keeps_its_own_error() -> None:
    async with CoreClient(BASE, timeout=5.0, transport=_core(lambda _: {}), page_size=3) as c:
        with pytest.raises(ValidationFailed, match="output.records"):
            await c.institutions()


def test_the_simulator_names_a_bad_paging_field() -> None:
    rows = list(range(5))
    assert paged(rows, {}) == {"records": rows}
    assert paged(rows, {"page_num": 2, "page_size": 2}) == {
        "records": [2, 3], "page_num": 2, "page_size": 2, "total": 5}
    assert paged(rows, {"page_num": 4, "page_size": 2})["records"] == []  # type: ignore[index]
    assert "input.page_num" in str(paged(rows, {"page_num": 0, "page_size": 2}))
    assert "input.page_size" in str(paged(rows, {"page_num": 1, "page_size": 10_001}))
    assert "input.page_size" in str(paged(rows, {"page_num": 1, "page_size": True}))


def test_a_page_size_outside_the_limits_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="page_size 0"):
        CoreClient(BASE, timeout=5.0, page_size=0)
