"""The hub on PostgreSQL (``make postgres``) through its main flows, driven by the
simulators' traffic door (``simulators.traffic``, what ``hub traffic`` calls), every effect
counted at the simulators: core's H2101 events to tax (F2), a channel's applications (F1),
tax's pushes to core (F3), a department's list (F7 receipt), a tax outage switched on
through the door -> dead letters -> healed -> retried by operations -> delivered once.

One stack on a fresh PostgreSQL database per run (skipped without PostgreSQL, a failure
under CI: ``tests.support.postgres``)."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from config.settings import load_settings
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack, wait_until_settled
from simulators.serving import serve_app
from simulators.traffic import DEV_CONTROL_TOKEN, create_app, targets_from_stack
from tests.support.postgres import fresh_database
from tools.demo_flows import wait_for

pytestmark = pytest.mark.integration

DOOR = {"X-Sim-Token": DEV_CONTROL_TOKEN}
OPS = {"Authorization": "Bearer dev-ops"}
ENROLL = "EmployeeEnroll:"


async def test_main_flows_on_postgresql_through_the_traffic_door() -> None:
    s = load_settings()
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    async with fresh_database("flows") as pg, running_stack(
            s, store=store, database_url=pg,
            overrides=fast_policies(s, max_attempts=2, delays_ms=(200, 400))) as st, \
            serve_app(create_app(targets_from_stack(st))) as door, \
            httpx.AsyncClient(base_url=door, headers=DOOR, timeout=30) as sim, \
            httpx.AsyncClient(base_url=st.hub_url, headers=OPS, timeout=15) as hub:
        assert st.settings.database_url.startswith("postgresql+asyncpg://")
        assert (await sim.post("/traffic/core", json={"count": 2}, headers={
            "X-Sim-Token": "wrong"})).status_code == 401

        # F2: N events sent -> N taken by the hub -> N effects at the tax simulator
        tax0 = st.tax_state.log.snapshot()
        r = await sim.post("/traffic/core", json={"type": "H2101", "count": 6})
        assert r.status_code == 200, r.text
        assert r.json() | {"ids": []} == {"sent": 6, "accepted": 6, "refused": 0, "failed": 0,
                                          "ids": []}
        counts = await wait_until_settled(st, 6, timeout=20)
        assert counts.get("delivered") == 6, counts
        assert sum(st.tax_state.log.since(tax0, ENROLL).values()) == 6
        assert not st.tax_state.log.summary_since(tax0, ENROLL)["duplicates"]

        # F1: a channel's applications end in its callbacks
        r = await sim.post("/traffic/channel", json={"channel": "my_nanjing",
                                                     "type": "resident_enroll", "count": 2})
        assert r.json()["accepted"] == 2, r.text
        apps = r.json()["ids"]
        await wait_for(lambda: all(a in st.inbox.results for a in apps), 20)
        assert {st.inbox.status_of(a) for a in apps} == {"completed"}

        # F3: tax's pushes reach core, once each
        core0 = st.core_state.log.snapshot()
        r = await sim.post("/traffic/tax", json={"kind": "push", "count": 2})
        assert r.json()["accepted"] == 2, r.text
        pushed = ("H3001:", "H3002:")
        await wait_for(lambda: sum(st.core_state.log.since(core0, pushed).values()) >= 2, 15)
        assert sum(st.core_state.log.since(core0, pushed).values()) == 2

        # F7: a department's list, one bad row refused in the receipt (row, field, reason)
        r = await sim.post("/traffic/department", json={"department": "civil_affairs",
                                                        "count": 2, "bad": 1})
        assert r.json() | {"ids": []} == {"sent": 3, "accepted": 2, "refused": 1,
                                          "failed": 0, "ids": []}, r.text

        # break tax through the door, see the dead letters, heal, retry: delivered once
        r = await sim.post("/traffic/faults/tax", json={"mode": "5xx", "rate": 1.0,
                                                        "operation": "EmployeeEnroll"})
        assert r.status_code == 200 and r.json()[0]["kind"] == "http_5xx", r.text
        tax1 = st.tax_state.log.snapshot()
        assert (await sim.post("/traffic/core", json={"count": 2})).json()["accepted"] == 2
        counts = await wait_until_settled(st, 6 + 2 + 2 + 2, timeout=25)
        assert counts.get("dead", 0) >= 2, counts
        dead = await _dead_ids(hub)
        assert len(dead) == 2 and not st.tax_state.log.since(tax1, ENROLL)
        assert (await sim.delete("/traffic/faults/tax")).status_code == 200
        assert (await sim.get("/traffic/faults/tax")).json() == []
        r = await hub.post("/admin/dead-letters/retry", json={
            "ids": dead, "reason": "tax is back (test)"})
        assert r.status_code == 200, r.text
        await wait_for(lambda: sum(st.tax_state.log.since(tax1, ENROLL).values()) >= 2, 20)
        await asyncio.sleep(0.3)  # a duplicate would land now
        assert sum(st.tax_state.log.since(tax1, ENROLL).values()) == 2
        effects = (await sim.get("/traffic/effects/tax")).json()
        assert effects["duplicates"] == {} and "order" not in effects


async def _dead_ids(hub: httpx.AsyncClient) -> list[int]:
    r = await hub.get("/admin/dead-letters", params={"partner": "tax", "status": "dead"})
    r.raise_for_status()
    return [int(d["id"]) for d in r.json()["items"]]
