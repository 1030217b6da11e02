"""The caseworker's backend on the real hub (RabbitMQ, Redis, SQLite, simulators over
sockets): real flows write transactions; a search by the person's ID number finds them
masked; the path lists the hops in order with timings; the worklist shows the failed
sync; an operator's reset closes an open breaker. One stack for all of it (CI time)."""

from __future__ import annotations

import random

import httpx
import pytest

from adapters.core.translate import enrollment_to_event
from config.settings import load_settings
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack, wait_until_settled
from simulators.simkit import Fault

pytestmark = pytest.mark.integration

READER = {"Authorization": "Bearer dev-readonly"}
OPS = {"Authorization": "Bearer dev-ops"}


def _event(store: CoreStore, i: int) -> dict[str, object]:
    person = list(store.persons.values())[i]
    req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), i),
                          input={"data": enrollment_to_event(person)})
    return req.model_dump(mode="json", exclude_none=True)


async def _post_event(st: Stack, body: dict[str, object]) -> str:
    async with httpx.AsyncClient(timeout=10, auth=st.partner_auth("core")) as c:
        r = await c.post(f"{st.hub_url}/partners/core/events", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["output"]["correlation_id"])


async def test_search_path_worklist_and_breaker_reset_on_the_real_hub() -> None:
    s = load_settings()
    store = CoreStore.seed(1, 3, rng_seed=random.randrange(10**9))
    ok_person, bad_person = list(store.persons.values())[:2]
    async with running_stack(s, store=store, overrides=fast_policies(s)) as st, \
            httpx.AsyncClient(base_url=st.hub_url, timeout=10) as http:
        ok_cid = await _post_event(st, _event(store, 0))
        assert await wait_until_settled(st, 1, timeout=20) == {"delivered": 1}
        st.tax_state.faults[:] = [Fault(kind="reject", count=1, code="TX102", text="单位未登记",
                                        operation="EmployeeEnroll")]
        bad_cid = await _post_event(st, _event(store, 1))
        assert await wait_until_settled(st, 2, timeout=20) == {"delivered": 1, "rejected": 1}

        # search by the person's ID number: found, masked; the unit finds both
        r = await http.get("/transactions", params={"person": ok_person.id_number},
                           headers=READER)
        assert r.status_code == 200, r.text
        page = r.json()
        assert [t["correlation_id"] for t in page["items"]] == [ok_cid]
        assert page["items"][0]["status"] == "delivered"
        assert ok_person.id_number not in r.text
        r = await http.get("/transactions", params={"unit": ok_person.unit_credit_code},
                           headers=READER)
        assert {t["correlation_id"] for t in r.json()["items"]} >= {ok_cid, bad_cid}
        bad_id = bad_person.id_number[:17] + ("1" if bad_person.id_number[17] != "1" else "2")
        r = await http.get("/transactions", params={"person": bad_id}, headers=READER)
        assert r.status_code == 422 and "person" in r.text and bad_id not in r.text

        # the path: hops in logged order, each with its times, the gaps between them
        r = await http.get(f"/transactions/{ok_cid}/path", headers=READER)
        hops = r.json()["hops"]
        names = [h["hop"] for h in hops]
        assert names[:2] == ["ingress.core", "tax.employee"] and "core.sync" in names
        assert [h["seq"] for h in hops] == list(range(1, len(hops) + 1))
        assert hops[0]["gap_ms"] is None and all(isinstance(h["gap_ms"], int)
                                                 for h in hops[1:])
        assert all(h["started"] <= h["ended"] for h in hops)
        assert [h["ended"] for h in hops] == sorted(h["ended"] for h in hops)
        assert ok_person.id_number not in r.text

        # the rejected one waits on the failed-syncs worklist, masked
        lists = (await http.get("/worklists", headers=READER)).json()
        counts = {x["name"]: x["count"] for x in lists["lists"]}
        assert counts["failed_syncs"] == 1 and "identity_confirmations" in counts
        r = await http.get("/worklists/failed_syncs", headers=READER)
        item = r.json()["items"][0]
        assert item["ref"] == bad_cid and item["kind"] == "sync_rejected"
        assert item["action"] == "/admin/resend/employee"
        assert bad_person.id_number not in r.text

        # an open breaker, closed by an operator
        tax = st.hub.deps.breakers.get("tax")
        for _ in range(tax.policy.threshold):
            tax.failure()
        states = {b["partner"]: b["state"]
                  for b in (await http.get("/admin/breakers", headers=READER)).json()}
        assert states["tax"] == "open"
        assert (await http.post("/admin/breakers/tax/reset", headers=READER)).status_code == 403
        r = await http.post("/admin/breakers/tax/reset", headers=OPS)
        assert r.status_code == 200 and r.json()["was"] == "open"
        states = {b["partner"]: b["state"]
                  for b in (await http.get("/admin/breakers", headers=READER)).json()}
        assert states["tax"] == "closed"
        audit = (await http.get("/admin/audit", headers=OPS)).json()
        assert {"breaker.reset", "transaction.search"} <= {e["action"] for e in audit}
        search = next(e for e in audit if e["action"] == "transaction.search")
        assert ok_person.id_number not in str(search)
