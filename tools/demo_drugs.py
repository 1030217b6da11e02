"""F11 线上购药 in the demo: the online mall's orders through the hub's sale gate, paid, taken
by the pharmacy ERP, reported to the 医保监管平台, shipped, received or returned.

``drugs_round(st, http)`` runs on a ``simulators.harness`` stack and returns its lines and
the ``Flow`` counted at the simulators: ``sent`` = every order the mall placed,
``rejected`` = orders the gate refused with field and reason (an expired prescription,
another person's, one the center does not hold, one whose answer had a bad signature, a
处方药 without a prescription, over the 单次购药量, no 医保资格, stock going negative),
``delivered`` = accepted orders the supervision platform holds (its effect ``order:<no>``)
and the ERP took (``order:<no>``); the rest is dead. ``duplicates`` = extra effects at the
ERP and the platform: the platform fails once (5xx) and loses one answer (duplicate),
the ERP sends one 接单 twice; each must count once.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from simulators.drugs import PHARMACIES, DrugSims, order_body, paid_body, sync_hub
from simulators.harness import Stack
from simulators.pharmacy import push_stock
from simulators.simkit import Fault
from tools.demo_flows import Flow, extra_effects, wait_for

__all__ = ["drugs_round"]

ADMIN = {"Authorization": "Bearer dev-admin"}
OTC = ("XN02BEA001A001010100002", "XR06AXL010A001010100004", "ZA04BAA001A001010100006")
RX = ("XA10BAA017A001010101445", "XC09AAA068A001010100722", "XJ01CAA040A001010100001")


async def drugs_round(st: Stack, http: httpx.AsyncClient, *, orders: int = 6,
                      seed: int = 11) -> tuple[list[str], Flow]:
    sims: DrugSims | None = st.sims.get("drugs")
    if sims is None:
        return ["F11 线上购药: the stack has no F11 simulators"], Flow()
    rx = st.sims.get("prescription")
    rng = random.Random(seed)
    before = (sims.erp_state.log.snapshot(), sims.sup_state.log.snapshot())
    await sync_hub(http, st.hub_url, ADMIN)
    center = rx.center if rx is not None else None
    me = center.certno if center is not None else next(iter(st.store.persons.values())).id_number
    name = center.psn_name if center is not None else "王小明"
    tag = f"{seed:02d}{rng.randrange(10**6):06d}"
    good: list[dict[str, Any]] = []
    for i in range(orders):
        no = f"DM{tag}G{i:02d}"
        if center is not None and i % 2:
            code = RX[i % len(RX)]
            center.add(f"RXD{tag}{i:02d}", certno=me, psn_name=name, drugs={code: 2})
            good.append(order_body(no, me, name, {code: 2}, hi_rxno=f"RXD{tag}{i:02d}"))
        else:
            good.append(order_body(no, me, name, {OTC[i % len(OTC)]: 1 + i % 3}))
    bad: list[tuple[str, dict[str, Any]]] = [
        ("处方药 without a prescription", order_body(f"DM{tag}B01", me, name, {RX[0]: 1})),
        ("over the 单次购药量", order_body(f"DM{tag}B02", me, name, {OTC[0]: 11})),
    ]
    if center is not None:
        center.add(f"RXE{tag}", certno=me, psn_name=name, drugs={RX[0]: 1}, valid_days=-1)
        center.add(f"RXO{tag}", certno=center.other_certno, psn_name="李红", drugs={RX[0]: 1})
        bad += [("expired prescription", order_body(f"DM{tag}B03", me, name, {RX[0]: 1},
                                                    hi_rxno=f"RXE{tag}")),
                ("another person's prescription", order_body(
                    f"DM{tag}B04", me, name, {RX[0]: 1}, hi_rxno=f"RXO{tag}")),
                ("prescription not found", order_body(f"DM{tag}B05", me, name, {RX[0]: 1},
                                                      hi_rxno=f"RXN{tag}"))]
    # no 医保资格: a buyer core holds as not insured
    stranger = next(iter(st.store.persons.values()))
    st.store.drug_uninsured.add(stranger.id_number)
    bad.append(("no 医保资格", order_body(f"DM{tag}B08", stranger.id_number, stranger.name,
                                         {OTC[0]: 1})))
    # stock going negative: the ERP takes 板蓝根 down to 2 at the second pharmacy
    r = await push_stock(http, st.hub_url, sims.secrets["pharmacy_erp"], {
        "push_id": f"DM{tag}", "pharmacy_code": PHARMACIES[1], "mode": "snapshot",
        "items": [{"drug_code": OTC[2], "quantity": 2}]})
    r.raise_for_status()
    bad.append(("stock going negative", order_body(f"DM{tag}B06", me, name, {OTC[2]: 3},
                                                   pharmacy=PHARMACIES[1])))
    sent = rejected = 0
    reasons: dict[str, str] = {}
    accepted: list[dict[str, Any]] = []
    for label, body in bad:
        r = await _place(http, st, sims, body)
        sent += 1
        if r.status_code == 422:
            rejected += 1
            first = r.json()["refused"][0]
            reasons[label] = f"{first['field']}"
        elif r.status_code == 200:
            accepted.append(body)
    if rx is not None and center is not None:  # the center's answer fails verification
        center.add(f"RXS{tag}", certno=me, psn_name=name, drugs={RX[1]: 1})
        rx.switch("bad_signature", count=1, match=f"RXS{tag}")
        r = await _place(http, st, sims, order_body(f"DM{tag}B07", me, name, {RX[1]: 1},
                                                    hi_rxno=f"RXS{tag}"))
        sent += 1
        if r.status_code == 422:
            rejected += 1
            reasons["bad signature"] = r.json()["refused"][0]["field"]
    for body in good:
        r = await _place(http, st, sims, body)
        sent += 1
        if r.status_code == 200:
            accepted.append(body)
        elif r.status_code == 422:
            rejected += 1
    # the platform fails once and loses one answer; the ERP sends one 接单 twice
    if accepted:
        sims.sup_state.faults.append(Fault(kind="http_5xx", count=1,
                                           match=f"order:{accepted[0]['order_no']}"))
        sims.sup_state.faults.append(Fault(kind="duplicate", count=1,
                                           match=f"order:{accepted[-1]['order_no']}"))
        sims.erp_state.faults.append(Fault(kind="duplicate", count=1,
                                           match=f"order:{accepted[-1]['order_no']}"))
    for i, body in enumerate(accepted):
        r = await http.post(f"{st.hub_url}/partners/drugs/orders/{body['order_no']}/payment",
                            json=paid_body(body["total"], f"PAY{tag}{i:02d}"), auth=sims.auth())
        r.raise_for_status()
    nos = {b["order_no"] for b in accepted}
    await wait_for(lambda: nos <= sims.supervision.orders() and nos <= set(sims.erp.orders), 60)
    await sims.erp.settle()
    shipped = received = returned = 0
    for body in accepted[:2]:  # 发货 and the buyer's 确认收货
        if await sims.erp.ship(body["order_no"]) == 200:
            shipped += 1
            r = await http.post(f"{st.hub_url}/partners/drugs/orders/{body['order_no']}/"
                                "receipt", auth=sims.auth())
            received += int(r.status_code == 200)
    if len(accepted) > 2:  # 退货: refunded by the ERP, the platform told
        no = accepted[2]["order_no"]
        r = await http.post(f"{st.hub_url}/partners/drugs/orders/{no}/returns",
                            json={"kind": "not_wanted"}, auth=sims.auth())
        if r.status_code == 200:
            await wait_for(lambda: no in sims.supervision.refunds(), 30)
            returned = int(no in sims.supervision.refunds())
    erp_now = sims.erp_state.log.since(before[0], ("order:", "refund:"))
    sup_now = sims.sup_state.log.since(before[1], ("order:", "refund:"))
    delivered = sum(1 for no in nos if f"order:{no}" in sup_now and f"order:{no}" in erp_now)
    flow = Flow(sent=sent, delivered=delivered, rejected=rejected,
                failed=max(0, sent - delivered - rejected),
                duplicates=extra_effects(erp_now) + extra_effects(sup_now))
    lines = [
        f"  线上购药 orders: {sent} placed, {len(accepted)} accepted, {rejected} refused at the "
        "gate: " + ", ".join(f"{k} ({v})" for k, v in reasons.items()),
        f"  线上购药 after payment: ERP took {sum(1 for k in erp_now if k.startswith('order:'))}"
        f", supervision holds {sum(1 for k in sup_now if k.startswith('order:'))} "
        f"(replays dropped: {sims.sup_state.log.replays}), shipped={shipped} "
        f"received={received} returned+refunded={returned}",
    ]
    return lines, flow


async def _place(http: httpx.AsyncClient, st: Stack, sims: DrugSims,
                 body: dict[str, Any]) -> httpx.Response:
    """The mall places an order; a 503 (core or the center could not answer, nothing
    stored) is asked again, as a mall would."""
    for _ in range(4):
        r = await http.post(f"{st.hub_url}/partners/drugs/orders", json=body,
                            auth=sims.auth())
        if r.status_code != 503:
            break
        await asyncio.sleep(0.2)
    return r
