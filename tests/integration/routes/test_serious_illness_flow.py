"""F15 大病保险 end to end on real servers: core's settlements through the hub's lanes to the
insurer simulator, counted there (seed 004 lines 28-29, 39, 71, 75, 77, 111, 123, 126).

One stack: shares in order per person, a 冲销 after its original, an orphan 冲销 refused,
idempotency, retries and a business rejection; payments and the overdue list; the
financing notice from return files; the batches (赔付明细, a bad one refused, 清算 and 轧差
resumed after a failure); a clue; then the demo round."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import httpx
import pytest

from config.settings import load_settings
from contracts.clock import now_beijing, today_beijing
from contracts.ids import make_id_number
from contracts.masking import mask_id
from simulators.assistance import make_settlement
from simulators.harness import Stack, fast_policies, running_stack
from simulators.insurer import InsurerSim, emit, pay, reversal_data, settlement_data
from simulators.simkit import Fault
from tools.demo_flows import wait_for
from tools.demo_serious_illness import add_paying_residents, serious_illness_round

pytestmark = pytest.mark.integration

OPS = {"Authorization": "Bearer dev-ops"}
CASEWORKER = {"Authorization": "Bearer dev-caseworker"}


async def _status(st: Stack, setl_id: str, want: tuple[str, ...] = ("delivered", "rejected",
                                                                    "dead"),
                  timeout: float = 15) -> str:
    store = st.hub.deps.serious_illness
    status = "absent"
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        row = await store.share(setl_id)
        status = str(row["status"]) if row else "absent"
        if status in want:
            break
        await asyncio.sleep(0.05)
    return status


async def _shares_and_reversals(st: Stack, http: httpx.AsyncClient, sim: InsurerSim) -> None:
    rng = random.Random(5)
    secret = st.partner_secret("core")
    now = now_beijing().replace(tzinfo=None, microsecond=0)
    a, b = make_id_number(rng), make_id_number(rng)
    s = [make_settlement(a if i < 4 else b, now - timedelta(minutes=10 - i), 1_200_000 + i,
                         setl_id=f"T15-{i}", name="李娜") for i in range(7)]
    small = make_settlement(b, now, 50_000, setl_id="T15-SMALL", name="李娜")  # no 大病 part
    sim.state.faults += [Fault(kind="http_5xx", operation="shares", match="T15-1", count=2),
                         Fault(kind="reject", operation="shares", match="T15-5", count=1,
                               code="E_POLICY", text="not covered"),
                         Fault(kind="duplicate", operation="shares", match="T15-2", count=1),
                         Fault(kind="http_5xx", operation="shares", match="T15-6")]  # down
    answers = [await emit(http, st.hub_url, settlement_data(x), secret, i)
               for i, x in enumerate([*s, small])]
    assert [r.status_code for r in answers] == [200] * 8
    assert answers[0].json()["output"]["status"] == "queued"
    assert answers[7].json()["output"]["share"] is False
    # a 冲销 of T15-0 sent right away: it waits for its original, then follows it
    rev = await emit(http, st.hub_url, reversal_data("T15-R0", s[0]), secret, 20)
    assert rev.status_code == 200, rev.text
    # the same settlement again is one effect; other content under its id is refused
    again = await emit(http, st.hub_url, settlement_data(s[0]), secret, 21)
    assert again.json()["output"]["duplicate"] is True
    changed = s[1].model_copy(update={"institution_code": "H99"})
    conflict = await emit(http, st.hub_url, settlement_data(changed), secret, 22)
    assert conflict.status_code == 409 and "input.data.setl_id" in conflict.json()["err_msg"]
    # an orphan 冲销: refused with field and reason, nothing recorded, nothing sent
    orphan = await emit(http, st.hub_url, reversal_data("T15-R9", s[0],
                                                        orig_setl_id="T15-NONE"), secret, 23)
    assert orphan.status_code == 422
    assert orphan.json()["err_msg"].startswith("input.data.orig_setl_id: no settlement")
    assert await st.hub.deps.serious_illness.share("T15-R9") is None
    # money as a float is refused naming the field
    bad = settlement_data(make_settlement(a, now, 1_300_000, setl_id="T15-F", name="李娜"))
    bad["hifmi_pay"] = 650.0
    floated = await emit(http, st.hub_url, bad, secret, 24)
    assert floated.status_code == 422 and "input.data.hifmi_pay" in floated.json()["err_msg"]
    for setl_id in [*(x.setl_id for x in s[:6]), "T15-R0"]:
        assert await _status(st, setl_id) in ("delivered", "rejected"), setl_id
    assert await _status(st, "T15-5") == "rejected"
    assert await _status(st, "T15-6") == "dead"  # retries exhausted: parked in the DLQ
    dead = await st.hub.deps.serious_illness.share("T15-6")
    assert dead is not None and dead["reason"].startswith("UNAVAILABLE")
    row = await st.hub.deps.serious_illness.share("T15-5")
    assert row is not None and "E_POLICY" in row["reason"]
    effects = sim.state.log.effects
    assert all(effects[f"share:T15-{i}"] == 1 for i in range(5)), effects
    assert effects["share:T15-5"] == effects["share:T15-6"] == effects["share:T15-SMALL"] == 0
    assert effects["share:T15-R0"] == 1 and sim.book.orphans == 0
    assert sim.state.log.replays >= 1  # the lost answer of T15-2 met a replay
    # per person in order, the 冲销 after its original
    order = sim.state.log.order[a]
    assert order.index("reverse:T15-R0") > order.index("settle:T15-0")
    assert [v for v in order if v.startswith("settle")] == [f"settle:T15-{i}" for i in range(4)]
    # a 冲销 of a settlement the insurer refused is refused at the door
    late = await emit(http, st.hub_url, reversal_data("T15-R5", s[5]), secret, 25)
    assert late.status_code == 422 and "ORIGINAL_NOT_DELIVERED" in late.text
    sim.state.faults.clear()
    # payments and the time limit (111)
    paid = await pay(http, st.hub_url, "T15-1", today_beijing(), st.partner_secret("insurer"))
    assert paid.status_code == 200 and paid.json()["in_time"] is True
    unknown = await pay(http, st.hub_url, "T15-5", today_beijing(),
                        st.partner_secret("insurer"))
    assert unknown.status_code == 404 and unknown.json()["field"] == "setl_id"
    late_day = (today_beijing() + timedelta(days=40)).isoformat()
    r = await http.get(f"{st.hub_url}/admin/serious-illness/claims/overdue",
                       params={"as_of": late_day}, headers=CASEWORKER)
    r.raise_for_status()
    listed = {c["setl_id"]: c for c in r.json()["claims"]}
    assert set(listed) >= {"T15-2", "T15-3", "T15-4"}
    assert "T15-1" not in listed and "T15-0" not in listed and "T15-5" not in listed
    assert listed["T15-2"]["id_number"] == mask_id(a) != a
    r = await http.get(f"{st.hub_url}/admin/serious-illness/claims/overdue", headers=CASEWORKER)
    assert not [c for c in r.json()["claims"] if c["setl_id"].startswith("T15-")]


async def _financing_batches_clues(st: Stack, http: httpx.AsyncClient,
                                   sim: InsurerSim) -> None:
    year = now_beijing().year
    none = await http.post(f"{st.hub_url}/admin/serious-illness/financing", headers=OPS,
                           json={"year": year - 3})
    assert none.status_code == 422 and none.json()["errors"][0]["field"] == "year"
    await add_paying_residents(st, year, 5, random.Random(9), "TFIN")
    got = []
    for _ in range(2):
        r = await http.post(f"{st.hub_url}/admin/serious-illness/financing", headers=OPS,
                            json={"year": year, "estimated": "600.00"})
        assert r.status_code == 200, r.text
        got.append(r.json())
    assert got[0]["payers"] == 5 and got[0]["total"] == "550.00"
    assert got[1]["duplicate"] is True
    assert [t["amount"] for t in got[0]["schedule"]] == ["150.00", "150.00", "150.00",
                                                         "100.00"]
    assert await wait_for(lambda: sim.state.log.effects[f"financing:{year}:5"] == 1, 10)
    floated = await http.post(f"{st.hub_url}/admin/serious-illness/financing", headers=OPS,
                              json={"year": year, "estimated": 600.5})
    assert floated.status_code == 422
    # 赔付明细 of this quarter: received once; a bad one refused and not kept
    quarter = f"{year}Q{(now_beijing().month - 1) // 3 + 1}"
    runs = [await http.post(f"{st.hub_url}/admin/serious-illness/batches", headers=OPS,
                            json={"kind": "claims", "period": quarter}) for _ in range(2)]
    assert [r.status_code for r in runs] == [200, 200], runs[0].text
    assert runs[0].json()["count"] == len(sim.book.claims(quarter)["rows"]) >= 4
    assert runs[1].json()["duplicate"] is True
    sim.book.bad_batches.add(f"claims:{year - 1}Q3")
    bad = await http.post(f"{st.hub_url}/admin/serious-illness/batches", headers=OPS,
                          json={"kind": "claims", "period": f"{year - 1}Q3"})
    assert bad.status_code == 502
    assert bad.json()["errors"][0]["field"] == "header.total"
    assert await st.hub.deps.serious_illness.batch(f"claims:{year - 1}Q3") is None
    wrong = await http.post(f"{st.hub_url}/admin/serious-illness/batches", headers=OPS,
                            json={"kind": "claims", "period": "2026"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "period"
    # 清算 sent once; 轧差 fails once at the insurer, then resumes with the same batch
    clearing = [await http.post(f"{st.hub_url}/admin/serious-illness/batches", headers=OPS,
                                json={"kind": "clearing", "period": str(year)})
                for _ in range(2)]
    assert [c.status_code for c in clearing] == [200, 200]
    assert clearing[0].json()["status"] == "sent" and clearing[1].json()["duplicate"] is True
    assert sim.state.log.effects[f"batch:clearing:{year}"] == 1
    await add_paying_residents(st, year, 2, random.Random(10), "TFIN2")  # paid after
    sim.state.faults.append(Fault(kind="http_5xx", operation="batches",
                                  match=f"batch:netting:{year}", count=1))
    first = await http.post(f"{st.hub_url}/admin/serious-illness/batches", headers=OPS,
                            json={"kind": "netting", "period": str(year)})
    assert first.status_code == 503
    assert (await st.hub.deps.serious_illness.batch(f"netting:{year}") or {})["status"] == \
        "failed"
    second = await http.post(f"{st.hub_url}/admin/serious-illness/batches", headers=OPS,
                             json={"kind": "netting", "period": str(year)})
    assert second.status_code == 200 and second.json()["total"] == "220.00"  # 2 × 110
    assert sim.state.log.effects[f"batch:netting:{year}"] == 1
    # a 疑点 clue, twice: one at the insurer
    clue = {"clue_id": "C15-1", "institution_code": "H32010200001", "category": "分解住院",
            "summary": "two admissions a day apart", "amount": "1234.50"}
    for _ in range(2):
        r = await http.post(f"{st.hub_url}/admin/serious-illness/clues", headers=CASEWORKER,
                            json=clue)
        assert r.status_code == 200, r.text
    assert await wait_for(lambda: sim.state.log.effects["clue:C15-1"] == 1, 10)
    r = await http.post(f"{st.hub_url}/admin/serious-illness/clues", headers=CASEWORKER,
                        json=clue | {"clue_id": "C15-2", "amount": 12.5})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "amount"


async def test_serious_illness_end_to_end() -> None:
    s = load_settings()
    async with running_stack(s, overrides=fast_policies(s, max_attempts=4,
                                                        delays_ms=(200, 400, 800))) as st, \
            httpx.AsyncClient(timeout=30) as http:
        sim: InsurerSim = st.sims["serious_illness"]
        await _shares_and_reversals(st, http, sim)
        await _financing_batches_clues(st, http, sim)
        lines, flow = await serious_illness_round(st, http)
        assert flow.balanced and flow.duplicates == 0, (lines, flow)
        assert flow.sent == 11 and flow.delivered >= 7 and flow.rejected >= 3, (lines, flow)
        assert any("refused 502 (header.total: " in line for line in lines), lines
        assert sim.book.orphans == 0  # the hub never sent a 冲销 without its original
