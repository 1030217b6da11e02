"""F15 大病保险 in the demo: core's one-stop settlements through the hub to the insurer, a 冲销,
an orphan 冲销 refused, a financing notice, a quarterly 赔付明细, a bad batch refused, and
failure switches (5xx, duplicate answer, business rejection, slow).

``serious_illness_round(st, http)`` runs on a ``simulators.harness`` stack and returns its
lines and the ``Flow`` counted at the insurer simulator, one outcome per message sent:

    settlement / 冲销   delivered: the insurer holds it exactly once; rejected: refused at
                        the door (422, field and reason) or by the insurer (the row says
                        why); the rest dead
    financing notice    delivered when the insurer took it once
    batch               delivered: 赔付明细 received (its header added up); rejected: a batch
                        whose header does not add up, refused with field and reason

``duplicates`` = extra effects at the insurer since the round began.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import insert

from contracts.clock import now_beijing
from contracts.ids import make_id_number
from simulators.assistance import make_settlement
from simulators.harness import Stack
from simulators.insurer import InsurerSim, emit, reversal_data, settlement_data
from simulators.simkit import Fault
from storage.returnfile_models import ReturnFileRow, ReturnRecordRow
from storage.times import utc_now
from tools.demo_flows import Flow, Outcome, extra_effects, wait_for

__all__ = ["add_paying_residents", "serious_illness_round"]

OPS = {"Authorization": "Bearer dev-ops"}
_DONE = ("delivered", "rejected", "dead", "none")


async def add_paying_residents(st: Stack, year: int, n: int, rng: random.Random,
                               tag: str) -> list[str]:
    """``n`` residents' 城乡居民缴费 lines of ``year`` in a return file the hub recorded whole
    (as ``jobs.returnfiles`` leaves it), plus one failed deduction (no payment); their ID
    numbers."""
    ids = [make_id_number(rng) for _ in range(n)]
    sha = f"{tag}{rng.randrange(16**20):020x}".ljust(64, "0")[:64]
    now = utc_now()
    async with st.hub.deps.journal.engine.begin() as conn:
        await conn.execute(insert(ReturnFileRow).values(
            sha256=sha, name=f"{tag}.txt", kind="resident_deduct", file_date=f"{year}0115",
            batch_no="0001", status="delivered", size=1, lines=n + 2, records=n + 1,
            line_errors=0, amount_fen=0, arrivals=n, delivered_batches=1,
            delivered_through=n + 2, reason_code="", reason="", started_at=now,
            updated_at=now, finished_at=now))
        await conn.execute(insert(ReturnRecordRow), [
            {"file_sha": sha, "line_no": i + 2, "serial": f"{tag}{i}", "payer_type": "P",
             "payer_code": pid, "payer_name": "居民", "unit_code": "", "insutype": "390",
             "period": f"{year}01", "pay_base_fen": 0, "amount_fen": 38000,
             "value_date": f"{year}0115", "result": "1" if i < n else "0",
             "fail_reason": "" if i < n else "账户余额不足", "mode": ""}
            for i, pid in enumerate([*ids, make_id_number(rng)])])
    return ids


async def _settled(st: Stack, setl_ids: list[str], timeout: float = 20) -> dict[str, str]:
    store = st.hub.deps.serious_illness
    states: dict[str, str] = {}

    async def look() -> bool:
        for s in setl_ids:
            row = await store.share(s)
            states[s] = str(row["status"]) if row else "absent"
        return all(v in (*_DONE, "absent") for v in states.values())

    deadline = asyncio.get_running_loop().time() + timeout
    while not await look() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    return states


async def serious_illness_round(st: Stack, http: httpx.AsyncClient, *, seed: int = 15
                                ) -> tuple[list[str], Flow]:
    sim: InsurerSim | None = st.sims.get("serious_illness")
    if sim is None or st.hub.deps.serious_illness is None:
        return ["F15 大病保险: the stack has no insurer simulator"], Flow()
    rng = random.Random(seed)
    tag = f"SI{seed}{rng.randrange(10**6):06d}"
    before = sim.state.log.snapshot()
    replays0, refused0 = sim.state.log.replays, sim.book.refused["shares"]
    secret = st.partner_secret("core")
    now = now_beijing().replace(tzinfo=None, microsecond=0)
    people = [make_id_number(rng) for _ in range(3)]
    settlements = [make_settlement(people[i % 3], now - timedelta(minutes=30 - i),
                                   1_500_000 + 10_000 * i, setl_id=f"{tag}-{i}",
                                   name="张伟", institution=i) for i in range(6)]
    outcomes: dict[str, Outcome] = {}
    sim.state.faults += [
        Fault(kind="http_5xx", operation="shares", match=f"{tag}-1", count=2),
        Fault(kind="duplicate", operation="shares", match=f"{tag}-2", count=1),
        Fault(kind="reject", operation="shares", match=f"{tag}-3", count=1,
              code="E_POLICY", text="not covered by the policy (simulated)"),
        Fault(kind="slow", operation="shares", match=f"{tag}-4", count=1, delay_s=0.2)]
    for seq, s in enumerate(settlements):
        r = await emit(http, st.hub_url, settlement_data(s), secret, seq)
        if r.status_code != 200:
            outcomes[s.setl_id] = "rejected"
    again = await emit(http, st.hub_url, settlement_data(settlements[0]), secret, 10)
    sent = len(settlements)
    await _settled(st, [s.setl_id for s in settlements])
    reversal = f"{tag}-R0"
    r = await emit(http, st.hub_url, reversal_data(reversal, settlements[0]), secret, 11)
    sent += 1
    if r.status_code != 200:
        outcomes[reversal] = "rejected"
    orphan = await emit(http, st.hub_url, reversal_data(f"{tag}-R9", settlements[5],
                                                        orig_setl_id=f"{tag}-NONE"), secret, 12)
    sent += 1
    outcomes[f"{tag}-R9"] = "rejected" if orphan.status_code == 422 else "dead"
    states = await _settled(st, [*(s.setl_id for s in settlements), reversal])
    for setl_id, status in states.items():
        if setl_id in outcomes:
            continue
        held = sim.state.log.effects[f"share:{setl_id}"] - before.get(f"share:{setl_id}", 0)
        outcomes[setl_id] = ("delivered" if status == "delivered" and held == 1 else
                             "rejected" if status == "rejected" else "dead")
    # financing: the paying residents of this year from return files, one notice
    year = now.year
    await add_paying_residents(st, year, 7, rng, tag)
    fin = await http.post(f"{st.hub_url}/admin/serious-illness/financing", headers=OPS,
                          json={"year": year})
    sent += 1
    await wait_for(lambda: any(k.startswith(f"financing:{year}:")
                               for k in sim.state.log.since(before)), 10)
    took = sum(sim.state.log.since(before, f"financing:{year}:").values())
    outcomes["financing"] = "delivered" if fin.status_code == 200 and took >= 1 else \
        "rejected" if fin.status_code == 422 else "dead"
    # a quarterly 赔付明细 that adds up, and one that does not (refused, nothing kept)
    quarter = f"{year}Q{(now.month - 1) // 3 + 1}"
    good = await http.post(f"{st.hub_url}/admin/serious-illness/batches", headers=OPS,
                           json={"kind": "claims", "period": quarter})
    bad_period = f"{year - 1}Q4"
    sim.book.bad_batches.add(f"claims:{bad_period}")
    bad = await http.post(f"{st.hub_url}/admin/serious-illness/batches", headers=OPS,
                          json={"kind": "claims", "period": bad_period})
    sent += 2
    outcomes["claims"] = "delivered" if good.status_code == 200 else "dead"
    outcomes["claims-bad"] = "rejected" if bad.status_code in (422, 502) else "dead"
    sim.state.faults.clear()
    extra = extra_effects(sim.state.log.since(before))
    flow = Flow.of(list(outcomes.values()), extra)
    good_body: dict[str, Any] = good.json() if good.status_code == 200 else {}
    bad_errors = (bad.json().get("errors") or [{}]) if bad.status_code >= 400 else [{}]
    lines = [
        f"  大病 shares: settlements={len(settlements)} (again: duplicate="
        f"{again.json().get('output', {}).get('duplicate')}) 冲销=1 orphan 冲销 refused="
        f"{orphan.status_code} ({_reason(orphan)}); at the insurer "
        f"shares={sum(sim.state.log.since(before, 'share:').values())} "
        f"replays={sim.state.log.replays - replays0} "
        f"rejected={sim.book.refused['shares'] - refused0}",
        f"  大病 financing {year}: payers={fin.json().get('payers')} "
        f"total={fin.json().get('total')} (× 110 元) notices at the insurer={took}",
        f"  大病 batches: 赔付明细 {quarter} count={good_body.get('count')} "
        f"total={good_body.get('total')}; {bad_period} refused {bad.status_code} "
        f"({bad_errors[0].get('field')}: {bad_errors[0].get('msg')})",
    ]
    return lines, flow


def _reason(r: httpx.Response) -> str:
    try:
        return str(r.json().get("err_msg") or "")[:120]
    except ValueError:
        return ""
