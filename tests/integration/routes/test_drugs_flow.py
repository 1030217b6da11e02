"""F11 线上购药 end to end on real servers: the sale gate (处方中心, 医保资格, 单次购药量,
stock), payment to the pharmacy ERP and the supervision platform, 接单, 发货, 收货 (by the
buyer and automatically), a return and its refund, 对账; every side effect counted at the
simulators (ERP, supervision platform, prescription center)."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import httpx
import pytest

from config.settings import load_settings
from contracts.clock import today_beijing
from simulators.core import CoreStore
from simulators.drugs import PHARMACIES, DrugSims, order_body, paid_body, sync_hub
from simulators.harness import Stack, fast_policies, running_stack
from simulators.pharmacy import push_stock
from simulators.simkit import Fault
from tools.demo_drugs import drugs_round
from tools.demo_flows import wait_for

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer dev-admin"}
OTC = "XN02BEA001A001010100002"  # 对乙酰氨基酚片, limit 10
LORATADINE = "XR06AXL010A001010100004"  # 氯雷他定片, no limit of its own (default 10)
METFORMIN = "XA10BAA017A001010101445"  # 二甲双胍片, 处方药
CAPTOPRIL = "XC09AAA068A001010100722"  # 卡托普利片, 处方药


def _stack(**kw: Any) -> Any:
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    drugs = s.drugs.model_copy(update={"auto_receive_days": 0, "check_s": 3600.0})
    return running_stack(s, store=store, overrides=fast_policies(s, max_attempts=3)
                         | {"drugs": drugs} | kw)


def _refused(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {x["field"]: x["reason"] for x in r.json()["refused"]}


async def _order(http: httpx.AsyncClient, st: Stack, body: dict[str, Any]) -> httpx.Response:
    sims: DrugSims = st.sims["drugs"]
    return await http.post(f"{st.hub_url}/partners/drugs/orders", json=body,
                           auth=sims.auth())


async def _status(http: httpx.AsyncClient, st: Stack, no: str) -> str:
    r = await http.get(f"{st.hub_url}/admin/drugs/orders/{no}", headers=ADMIN)
    return str(r.json()["order"]["status"]) if r.status_code == 200 else ""


async def test_sales_refused_at_the_gate_and_an_order_through_its_whole_life() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        sims: DrugSims = st.sims["drugs"]
        rx = st.sims["prescription"]
        center = rx.center
        me, name = center.certno, center.psn_name
        await sync_hub(http, st.hub_url, ADMIN)
        before_rx = sum(center.queries.values())

        # -- refused at the gate, each with field and reason, nothing held
        bad = {
            "expired": order_body("R-EXPIRED", me, name, {METFORMIN: 1}, hi_rxno="RX-EXPIRED"),
            "other": order_body("R-OTHER-1", me, name, {METFORMIN: 1}, hi_rxno="RX-OTHER"),
            "missing": order_body("R-MISSING", me, name, {METFORMIN: 1}, hi_rxno="RX-NOPE"),
            "no_rx": order_body("R-NO-RX-1", me, name, {METFORMIN: 1}),
            "limit": order_body("R-LIMIT-1", me, name, {OTC: 11}),
            "more": order_body("R-MORE-01", me, name, {METFORMIN: 3}, hi_rxno="RX-VALID"),
        }
        got = {k: _refused(await _order(http, st, b)) for k, b in bad.items()}
        assert "expired" in got["expired"]["prescription"]
        assert "another person" in got["other"]["prescription"]
        assert "not found" in got["missing"]["prescription"]
        assert "required" in got["no_rx"]["prescription"]
        assert "单次购药量" in got["limit"]["items.0.quantity"]
        assert "prescribed" in got["more"]["items.0.quantity"]
        body = order_body("R-TOTAL-1", me, name, {OTC: 1}) | {"total": "6.81"}
        assert "not the sum" in _refused(await _order(http, st, body))["total"]
        # the center's answer with a bad signature refuses the sale, and is not passed on
        rx.switch("bad_signature", count=1)
        got_bad = _refused(await _order(http, st, order_body(
            "R-BADSIG1", me, name, {METFORMIN: 2}, hi_rxno="RX-VALID")))
        assert "failed verification" in got_bad["prescription"]
        # no 医保资格 at core
        st.store.drug_uninsured.add(me)
        assert "医保资格" in _refused(await _order(http, st, order_body(
            "R-UNINS-1", me, name, {OTC: 1})))["id_number"]
        st.store.drug_uninsured.discard(me)
        assert sum(center.queries.values()) - before_rx >= 5  # the center was asked
        # stock going negative: an ERP delta and an order, refused whole
        p2 = PHARMACIES[1]
        r = await push_stock(http, st.hub_url, sims.secrets["pharmacy_erp"], {
            "push_id": "DELTA-1", "pharmacy_code": p2, "mode": "delta",
            "items": [{"drug_code": LORATADINE, "quantity": -25}]})
        assert r.status_code == 200, r.text
        r = await push_stock(http, st.hub_url, sims.secrets["pharmacy_erp"], {
            "push_id": "DELTA-2", "pharmacy_code": p2, "mode": "delta",
            "items": [{"drug_code": OTC, "quantity": -1},
                      {"drug_code": LORATADINE, "quantity": -6}]})
        assert "negative" in _refused(r)["items.1.quantity"]
        r = await _order(http, st, order_body("R-STOCK-1", me, name, {OTC: 1, LORATADINE: 6},
                                              pharmacy=p2))
        assert "negative" in _refused(r)["items.1.quantity"]
        r = await http.get(f"{st.hub_url}/admin/drugs/stock/{p2}", headers=ADMIN)
        assert r.json()["stock"][LORATADINE] == 5 and r.json()["stock"][OTC] == 30

        # -- accepted: an OTC order and a 处方药 order on a valid prescription
        a = order_body("A-000001", me, name, {OTC: 2})
        b = order_body("B-000001", me, name, {METFORMIN: 2, CAPTOPRIL: 1}, hi_rxno="RX-VALID")
        k = order_body("K-000001", me, name, {LORATADINE: 3})
        for o in (a, b, k):
            r = await _order(http, st, o)
            assert r.status_code == 200 and r.json()["accepted"], r.text
            assert "*" in r.json()["order"]["id_number"]
        r = await _order(http, st, a)  # the same order again: the stored answer
        assert r.json()["duplicate"] is True
        r = await http.post(f"{st.hub_url}/partners/drugs/orders/A-000001/payment",
                            json=paid_body(a["total"], "PAY-A") | {"self_pay": "1.00"},
                            auth=sims.auth())
        assert "total" in _refused(r)
        # supervision: the first push of A fails (5xx), B's answer is lost (duplicate)
        sims.sup_state.faults += [Fault(kind="http_5xx", match="order:A-000001", count=1),
                                  Fault(kind="duplicate", match="order:B-000001", count=1)]
        sims.erp_state.faults.append(Fault(kind="duplicate", match="order:K-000001",
                                           count=1))
        for o, pay in ((a, "PAY-A"), (b, "PAY-B"), (k, "PAY-K")):
            r = await http.post(f"{st.hub_url}/partners/drugs/orders/{o['order_no']}/payment",
                                json=paid_body(o["total"], pay), auth=sims.auth())
            assert r.status_code == 200, r.text
        assert await wait_for(lambda: sims.supervision.orders() >= {
            "A-000001", "B-000001", "K-000001"}, 20)
        for no in ("A-000001", "B-000001", "K-000001"):
            assert await wait_for_status(http, st, no, "accepted"), no
        # K's 接单 reached the hub twice: taken once
        await sims.erp.settle()
        assert sims.erp.event_answers["accept-K-000001"] == [200, 200]
        r = await http.get(f"{st.hub_url}/admin/drugs/orders/K-000001", headers=ADMIN)
        assert [e["event"] for e in r.json()["events"]].count("accepted") == 1
        assert sims.supervision.records["order:B-000001"]["drugs"][0]["rx"] is True

        # -- 发货, 收货 by the buyer (A) and by the clock (B)
        assert await sims.erp.ship("A-000001") == 200
        assert await sims.erp.ship("B-000001") == 200
        r = await http.post(f"{st.hub_url}/partners/drugs/orders/A-000001/receipt",
                            auth=sims.auth())
        assert r.status_code == 200 and r.json()["order"]["auto_received"] is False
        r = await http.post(f"{st.hub_url}/admin/drugs/clock", headers=ADMIN)
        assert r.json()["received"] == 1
        r = await http.get(f"{st.hub_url}/partners/drugs/orders/B-000001", auth=sims.auth())
        assert r.json()["order"]["status"] == "received"
        assert r.json()["order"]["auto_received"] is True

        # -- 退货: K back, refunded by the ERP, stock given back, the platform told
        r = await http.post(f"{st.hub_url}/partners/drugs/orders/A-000001/returns",
                            json={"kind": "not_wanted"}, auth=sims.auth())
        assert r.status_code == 409  # received: too late
        r = await http.post(f"{st.hub_url}/partners/drugs/orders/K-000001/returns",
                            json={"kind": "wrong_order", "reason": "买错了"}, auth=sims.auth())
        assert r.status_code == 200, r.text
        assert await wait_for_status(http, st, "K-000001", "refunded")
        assert await wait_for(lambda: "K-000001" in sims.supervision.refunds(), 20)
        r = await http.get(f"{st.hub_url}/admin/drugs/stock/{PHARMACIES[0]}", headers=ADMIN)
        assert r.json()["stock"][LORATADINE] == 40
        assert r.json()["stock"][OTC] == 38

        # -- 对账 of today: balanced; the ERP missing an order is found
        today = today_beijing().isoformat()
        url = f"{st.hub_url}/admin/drugs/reconciliations"
        r = await http.post(url, headers=ADMIN, json={"pharmacy_code": PHARMACIES[0],
                                                      "day": today})
        assert r.status_code == 200 and r.json()["balanced"] is True, r.text
        assert r.json()["hub"]["sales"] == 3 and r.json()["hub"]["refunds"] == 1
        sims.erp.drop_from_recon.add("A-000001")
        r = await http.post(url, headers=ADMIN, json={"pharmacy_code": PHARMACIES[0],
                                                      "day": today})
        assert r.json()["balanced"] is False
        assert r.json()["differences"] == [{"order_no": "A-000001", "kind": "sale",
                                             "issue": "only at the hub", "hub": a["total"]}]

        # -- counted at the partners: once each, whatever was retried or repeated
        sup = sims.sup_state.log.summary()
        erp = sims.erp_state.log.summary()
        assert sup["duplicates"] == {} and erp["duplicates"] == {}
        assert sup["effects"] == 4 and sup["replays"] >= 1  # 3 orders + 1 refund
        assert erp["effects"] == 4  # 3 orders + 1 refund request
        assert sims.erp.bad_signatures == 0 and sims.supervision.bad_signatures == 0
        assert date.fromisoformat(today)


async def wait_for_status(http: httpx.AsyncClient, st: Stack, no: str, status: str,
                          timeout: float = 20) -> bool:
    import asyncio
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _status(http, st, no) == status:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_demo_round_adds_up_at_the_simulators() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        lines, flow = await drugs_round(st, http)
        assert flow.sent == flow.delivered + flow.rejected + flow.dead, lines
        assert flow.duplicates == 0, lines
        assert flow.delivered >= 3 and flow.rejected >= 5, lines
        assert any("bad signature" in line for line in lines), lines
