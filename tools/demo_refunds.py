"""F10 退费 in the demo: core's approved refunds through tax's 到账 and 用友 finance, with a
withdrawal, an account correction, failures and a 销号 run twice.

``refunds_round(st, http)`` runs on a ``simulators.harness`` stack and returns its lines
and the ``Flow`` counted at the simulators, one outcome per order core sent:
``delivered`` = core shows it refunded (H7101) and finance paid it exactly once, or core
shows it withdrawn and finance paid nothing; ``rejected`` = refused at the door (422,
field and reason), or core shows it refused (no 到账) or failed (finance); the rest is
dead. ``duplicates`` = extra effects at finance (orders, payments), core (H7101) and
tax (RefundWriteOff).
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from contracts.clock import today_beijing
from contracts.finance import INFNO_APPROVED, INFNO_CORRECTED, INFNO_WITHDRAW, period_of
from simulators.finance import FinanceSim, make_order, refund_event
from simulators.harness import Stack
from simulators.simkit import Fault
from storage.refunds import RefundOrderRow
from tools.demo_flows import Flow, Outcome, extra_effects, wait_for

__all__ = ["refunds_round"]

OPS = {"Authorization": "Bearer dev-ops"}


async def _send(st: Stack, http: httpx.AsyncClient, infno: str, data: dict[str, Any],
                seq: int) -> httpx.Response:
    return await http.post(f"{st.hub_url}/partners/core/refunds",
                           json=refund_event(infno, data, seq), auth=st.partner_auth("core"))


async def _settled(st: Stack, order_nos: list[str], timeout: float = 30) -> dict[str, str]:
    """Each order's status once none is on its way any more (or ``timeout``)."""
    store = st.hub.deps.refunds
    states: dict[str, str] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for n in order_nos:
            row = await store.get(n)
            states[n] = str(row["status"]) if row else "absent"
        if all(s in ("sent", "refunded", "withdrawn", "refused", "failed", "absent")
               for s in states.values()):
            break
        await asyncio.sleep(0.1)
    return states


async def refunds_round(st: Stack, http: httpx.AsyncClient, *, seed: int = 10
                        ) -> tuple[list[str], Flow]:
    fin: FinanceSim | None = st.sims.get("finance")
    if fin is None or st.hub.deps.refunds is None:
        return ["F10 退费: the stack has no finance simulator"], Flow()
    rng = random.Random(seed)
    tag = f"D{seed}{rng.randrange(10**6):06d}"
    before = (fin.state.log.snapshot(), st.core_state.log.snapshot(),
              st.tax_state.log.snapshot())
    outcomes: dict[str, Outcome] = {}
    orders = {f"{tag}-{i}": make_order(rng, f"{tag}-{i}", amount=f"{150 + 7 * i}.{i:02d}",
                                       unit=i % 3 == 0, source="2" if i == 1 else "1")
              for i in range(6)}
    never = make_order(rng, f"{tag}-NA")
    st.tax_sim.book.arrivals[never["id_number"]] = 0
    orders[never["order_no"]] = never
    wrong = make_order(rng, f"{tag}-ACC", account_no="6222000000000000")
    orders[wrong["order_no"]] = wrong
    bounce = make_order(rng, f"{tag}-BNC", account_no="6222000000009999")
    orders[bounce["order_no"]] = bounce
    withdrawn = make_order(rng, f"{tag}-WD")
    orders[withdrawn["order_no"]] = withdrawn
    bad = make_order(rng, f"{tag}-SUM") | {"amount": "1.00"}  # items do not add up
    fin.state.faults += [Fault(kind="http_5xx", operation="submit", match=f"{tag}-2", count=2),
                         Fault(kind="slow", operation="submit", match=f"{tag}-3", count=1,
                               delay_s=0.3),
                         Fault(kind="duplicate", operation="callback", match=f"{tag}-4",
                               count=1)]
    door_refused = 0
    for seq, data in enumerate([*orders.values(), bad]):
        r = await _send(st, http, INFNO_APPROVED, data, seq)
        if r.status_code == 422:
            door_refused += 1
            outcomes[str(data["order_no"])] = "rejected"
    sent = len(orders) + 1
    await _settled(st, list(orders))
    await _send(st, http, INFNO_WITHDRAW, {"order_no": withdrawn["order_no"]}, 50)
    await _settled(st, [withdrawn["order_no"]])
    await wait_for(lambda: _at_core(st, withdrawn["order_no"]) == "withdrawn", 15)
    corrected = {"order_no": wrong["order_no"],
                 "payee": wrong["payee"] | {"account_no": "6222123412341234"}}
    await _send(st, http, INFNO_CORRECTED, corrected, 51)
    await wait_for(lambda: fin.book.orders.get(wrong["order_no"], {}).get("version") == 2, 15)
    paid = fin.pay_all()
    live = [n for n in orders if n != withdrawn["order_no"]]
    await wait_for(lambda: all(_at_core(st, n) in ("refunded", "refused", "failed")
                               for n in live), 30)
    await fin.drain(5)
    for n in orders:
        at_core, pays = _at_core(st, n), fin.state.log.effects[f"pay:{n}"]
        if (at_core == "refunded" and pays == 1) or (at_core == "withdrawn" and pays == 0):
            outcomes[n] = "delivered"
        elif at_core in ("refused", "failed"):
            outcomes[n] = "rejected"
        else:
            outcomes[n] = "dead"
    # 销号: the refunded orders moved into an old 旬 and month, each run twice
    day = today_beijing() - timedelta(days=75 + seed % 5)
    refunded = [n for n, o in outcomes.items() if o == "delivered" and n != withdrawn["order_no"]]
    async with st.hub.deps.refunds.engine.begin() as conn:
        await conn.execute(update(RefundOrderRow).where(RefundOrderRow.order_no.in_(refunded))
                           .values(refunded_on=day.isoformat()))
    runs: list[dict[str, Any]] = []
    for target in ("finance", "tax"):
        for _ in range(2):
            r = await http.post(f"{st.hub_url}/admin/refunds/closures", headers=OPS,
                                json={"target": target,
                                      "period": period_of(target, day).name})
            r.raise_for_status()
            runs.append(r.json())
    await wait_for(lambda: bool(fin.state.log.since(before[0], "closure:")), 15)
    await wait_for(lambda: len(st.tax_state.log.since(before[2], "RefundWriteOff:"))
                   >= runs[2]["count"], 15)
    fin_now = fin.state.log.since(before[0], ("order:", "pay:", "closure:"))
    core_now = st.core_state.log.since(before[1], "H7101:")
    tax_now = st.tax_state.log.since(before[2], "RefundWriteOff:")
    duplicates = extra_effects(fin_now) + extra_effects(core_now) + extra_effects(tax_now)
    flow = Flow.of(list(outcomes.values()), duplicates)
    assert len(outcomes) == sent
    lines = [
        f"  退费 orders: sent={sent} refused at the door={door_refused} (field, reason) "
        f"no 到账={sum(1 for n in orders if _at_core(st, n) == 'refused')} "
        f"withdrawn={sum(1 for n in orders if _at_core(st, n) == 'withdrawn')} "
        f"failed at finance={sum(1 for n in orders if _at_core(st, n) == 'failed')}",
        f"  退费 finance: paid={paid} "
        f"payments={sum(fin.state.log.since(before[0], 'pay:').values())} "
        f"账户更正 v2 paid={int(fin.book.paid(wrong['order_no']))} "
        f"withdrawn paid={int(fin.book.paid(withdrawn['order_no']))}",
        f"  退费 销号: finance {runs[0]['period']} count={runs[0]['count']} "
        f"total={runs[0]['total']} published={runs[0]['published']}+{runs[1]['published']} "
        f"pages at finance={sum(fin.state.log.since(before[0], 'closure:').values())}; "
        f"tax {runs[2]['period']} write-offs={sum(tax_now.values())} (run twice each)",
    ]
    return lines, flow


def _at_core(st: Stack, order_no: str) -> str:
    return str(st.store.refunds.get(order_no, {}).get("status", ""))
