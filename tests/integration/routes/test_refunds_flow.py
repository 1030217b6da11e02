"""F10 退费 end to end on real servers: core's events through the hub's lanes to the tax and
finance simulators and back, counted at the simulators (seed 003 1916-1923, 2244-2265).

Two stacks: one walks an order through every state and the races, one runs the 销号
batches, the import, the 网办大厅 query and the demo round."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from config.settings import load_settings
from contracts.clock import today_beijing
from contracts.finance import (
    INFNO_APPROVED,
    INFNO_CORRECTED,
    INFNO_WITHDRAW,
    PARTNER,
    period_of,
)
from simulators.finance import FinanceSim, make_order, refund_event
from simulators.harness import Stack, fast_policies, running_stack
from simulators.simkit import Fault
from storage.refunds import RefundOrderRow
from tools.demo_flows import wait_for
from tools.demo_refunds import refunds_round

pytestmark = pytest.mark.integration

OPS = {"Authorization": "Bearer dev-ops"}
CASEWORKER = {"Authorization": "Bearer dev-caseworker"}


def _stack() -> Any:
    s = load_settings()
    return running_stack(s, overrides=fast_policies(s, max_attempts=4,
                                                    delays_ms=(200, 400, 800)))


async def _event(st: Stack, http: httpx.AsyncClient, infno: str, data: dict[str, Any],
                 seq: int = 0) -> httpx.Response:
    return await http.post(f"{st.hub_url}/partners/core/refunds",
                           json=refund_event(infno, data, seq), auth=st.partner_auth("core"))


async def _status(st: Stack, order_no: str, want: str, timeout: float = 20) -> dict[str, Any]:
    store = st.hub.deps.refunds
    row: dict[str, Any] | None = None
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        row = await store.get(order_no)
        if row is not None and row["status"] == want:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row["status"] == want, row
    return row


def _core(st: Stack, order_no: str) -> dict[str, Any]:
    return st.store.refunds.get(order_no, {})


async def test_orders_through_every_state_with_races() -> None:
    rng = random.Random(11)
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        fin: FinanceSim = st.sims["finance"]
        book = st.tax_sim.book
        # 1. happy path: 到账 at tax, taken by finance, paid, refunded only on the flag
        ok = make_order(rng, "TF-OK-1", amount="300.01")
        r = await _event(st, http, INFNO_APPROVED, ok)
        assert r.status_code == 200, r.text
        await _status(st, "TF-OK-1", "sent")
        assert _core(st, "TF-OK-1") == {}  # not refunded before the flag
        assert fin.pay("TF-OK-1")
        row = await _status(st, "TF-OK-1", "refunded")
        await wait_for(lambda: _core(st, "TF-OK-1").get("status") == "refunded", 10)
        assert row["finance_no"] and row["refunded_on"] == today_beijing().isoformat()
        # the same approval again: nothing new at finance
        r = await _event(st, http, INFNO_APPROVED, ok, 1)
        assert r.json()["output"]["duplicate"] is True
        # 2. money that never arrived: refused with field and reason, finance never asked
        never = make_order(rng, "TF-NEVER-1")
        book.arrivals[never["id_number"]] = 0
        await _event(st, http, INFNO_APPROVED, never, 2)
        row = await _status(st, "TF-NEVER-1", "refused")
        assert row["reason_field"] == "period_start" and "到账" in row["reason"]
        await wait_for(lambda: _core(st, "TF-NEVER-1").get("status") == "refused", 10)
        assert _core(st, "TF-NEVER-1")["reason_field"] == "period_start"
        # more than arrived: refused naming amount
        over = make_order(rng, "TF-OVER-1", amount="500.00")
        book.arrivals[over["id_number"]] = 100
        await _event(st, http, INFNO_APPROVED, over, 3)
        assert (await _status(st, "TF-OVER-1", "refused"))["reason_field"] == "amount"
        # 3. a refund withdrawn before finance pays: finance shows no payment
        w = make_order(rng, "TF-WD-1")
        await _event(st, http, INFNO_APPROVED, w, 4)
        await _status(st, "TF-WD-1", "sent")
        r = await _event(st, http, INFNO_WITHDRAW, {"order_no": "TF-WD-1"}, 5)
        assert r.status_code == 200 and r.json()["output"]["status"] == "withdrawing"
        await _status(st, "TF-WD-1", "withdrawn")
        assert not fin.pay("TF-WD-1")  # finance refuses to pay a withdrawn order
        assert fin.pay_all() == 0
        assert not fin.book.paid("TF-WD-1")
        assert st.sims["finance"].state.log.effects["pay:TF-WD-1"] == 0
        await wait_for(lambda: _core(st, "TF-WD-1").get("status") == "withdrawn", 10)
        # a forged 已退费 for the withdrawn order: an alert, not a silent success
        cb = {"order_no": "TF-WD-1", "version": 1, "status": "refunded", "refunded": "1",
              "amount": w["amount"], "finance_no": "X", "paid_at": "2026-01-01T10:00:00+08:00"}
        r = await http.post(f"{st.hub_url}/partners/{PARTNER}/callback", json=cb,
                            auth=st.partner_auth(PARTNER))
        assert r.status_code == 409 and r.json()["code"] == "4091", r.text
        row = await _status(st, "TF-WD-1", "withdrawn")
        assert "must not pay" in row["alert"]
        assert _core(st, "TF-WD-1")["status"] == "withdrawn"
        # withdrawn before it was ever sent: finance never sees the order at all
        early = make_order(rng, "TF-WD-2")
        fin.state.faults.append(Fault(kind="http_5xx", operation="submit", match="TF-WD-2",
                                      count=2))
        await _event(st, http, INFNO_APPROVED, early, 6)
        await _event(st, http, INFNO_WITHDRAW, {"order_no": "TF-WD-2"}, 7)
        await _status(st, "TF-WD-2", "withdrawn")
        assert "TF-WD-2" in fin.book.withdrawn and not fin.book.paid("TF-WD-2")
        # 4. the race: payment and withdrawal at once; exactly one wins, never both
        race = make_order(rng, "TF-RACE-1")
        await _event(st, http, INFNO_APPROVED, race, 8)
        await _status(st, "TF-RACE-1", "sent")
        fin.state.faults.append(Fault(kind="slow", operation="withdraw", delay_s=0.3,
                                      match="TF-RACE-1", count=1))
        r = await _event(st, http, INFNO_WITHDRAW, {"order_no": "TF-RACE-1"}, 9)
        await asyncio.sleep(0.1)  # the withdrawal is at finance, held by the slow switch
        paid = fin.pay("TF-RACE-1")
        final = await wait_for_final(st, "TF-RACE-1")
        assert fin.book.paid("TF-RACE-1") == paid == (final == "refunded")
        assert not (fin.book.paid("TF-RACE-1") and "TF-RACE-1" in fin.book.withdrawn
                    and final == "withdrawn")
        # 5. finance's failure per order, 账户更正, sent again as version 2 (same order no.)
        bad = make_order(rng, "TF-ACC-1", account_no="6222000000000000")
        await _event(st, http, INFNO_APPROVED, bad, 10)
        row = await _status(st, "TF-ACC-1", "failed")
        assert row["reason_field"] == "payee" and "账号" in row["reason"]
        await wait_for(lambda: _core(st, "TF-ACC-1").get("status") == "failed", 10)
        fix = {"order_no": "TF-ACC-1", "payee": {"account_name": bad["payee"]["account_name"],
                                                 "account_no": "6222111122223333",
                                                 "bank_name": "中国银行南京分行"}}
        r = await _event(st, http, INFNO_CORRECTED, fix, 11)
        assert r.json()["output"]["version"] == 2
        row = await _status(st, "TF-ACC-1", "sent")
        assert row["version"] == 2 and fin.book.orders["TF-ACC-1"]["version"] == 2
        fin.pay("TF-ACC-1")
        await _status(st, "TF-ACC-1", "refunded")
        # 6. a 税务退费申请: 复核核验 result and time reach tax (2244)
        taxed = make_order(rng, "TF-TAX-1", source="2", unit=True)
        await _event(st, http, INFNO_APPROVED, taxed, 12)
        await _status(st, "TF-TAX-1", "sent")
        await wait_for(lambda: any(k.startswith("RefundReviewFeedback:TFTF-TAX-1")
                                   for k in st.tax_state.log.effects), 10)
        # bad input: refused with field and reason, nothing stored
        sums = make_order(rng, "TF-BAD-1") | {"amount": "1.00"}
        r = await _event(st, http, INFNO_APPROVED, sums, 13)
        assert r.status_code == 422 and any(e["field"] == "data.amount"
                                            for e in r.json()["errors"]), r.text
        three = make_order(rng, "TF-BAD-2")
        three["items"][0]["amount"] = "1.001"
        r = await _event(st, http, INFNO_APPROVED, three, 14)
        assert r.status_code == 422 and "decimal places" in r.text
        neg = make_order(rng, "TF-BAD-3", amount="-5.00")
        r = await _event(st, http, INFNO_APPROVED, neg, 15)
        assert r.status_code == 422 and "negative" in r.text
        r = await _event(st, http, INFNO_WITHDRAW, {"order_no": "NOPE-1"}, 16)
        assert r.status_code == 422 and "unknown order" in r.text
        assert await st.hub.deps.refunds.get("TF-BAD-1") is None
        # finance's duplicate callbacks: core told once
        dup = make_order(rng, "TF-DUP-1")
        fin.state.faults.append(Fault(kind="duplicate", operation="callback", count=1))
        await _event(st, http, INFNO_APPROVED, dup, 17)
        await _status(st, "TF-DUP-1", "sent")
        fin.pay("TF-DUP-1")
        await _status(st, "TF-DUP-1", "refunded")
        await fin.drain(5)
        await asyncio.sleep(0.5)
        assert st.core_state.log.effects["H7101:TF-DUP-1:1:refunded"] == 1
        assert all(n == 1 for k, n in fin.state.log.effects.items() if k.startswith("pay:"))
        # 补发 (issue 12): a final status again to core is one new effect, the caller's
        # retry (same resend_id) none; an order on its way 409, nothing to finance
        before, fin_before = st.core_state.log.snapshot(), fin.state.log.snapshot()
        body = {"reason": "核心未收到", "resend_id": "resend-tf-ok-1"}
        for _ in range(2):
            r = await http.post(f"{st.hub_url}/admin/refunds/orders/TF-OK-1/resend",
                                json=body, headers=CASEWORKER)
            assert r.status_code == 200 and r.json()["status"] == "refunded", r.text
        assert await wait_for(lambda: bool(st.core_state.log.since(before, "H7101:")), 10)
        r = await http.post(f"{st.hub_url}/admin/refunds/orders/TF-TAX-1/resend",
                            json={"reason": "r"}, headers=CASEWORKER)
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "order_no", r.text
        r = await http.post(f"{st.hub_url}/admin/refunds/orders/NOPE-1/resend",
                            json={"reason": "r"}, headers=CASEWORKER)
        assert r.status_code == 404
        await asyncio.sleep(0.5)
        assert st.core_state.log.since(before, "H7101:") == {"H7101:TF-OK-1:1:refunded": 1}
        assert fin.state.log.since(fin_before, ("order:", "pay:")) == {}


async def wait_for_final(st: Stack, order_no: str) -> str:
    final = ""
    for _ in range(200):
        row = await st.hub.deps.refunds.get(order_no)
        final = str(row["status"]) if row else ""
        if final in ("refunded", "withdrawn"):
            break
        await asyncio.sleep(0.1)
    return final


async def _backdate(st: Stack, order_nos: list[str], day: Any) -> None:
    async with st.hub.deps.refunds.engine.begin() as conn:
        await conn.execute(update(RefundOrderRow).where(
            RefundOrderRow.order_no.in_(order_nos)).values(refunded_on=day.isoformat()))


async def test_closures_import_hall_query_and_demo_round() -> None:
    rng = random.Random(12)
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        fin: FinanceSim = st.sims["finance"]
        orders = [make_order(rng, f"TF-XH-{i}", amount=f"{100 + i}.{i:02d}", unit=i == 0)
                  for i in range(3)]
        for i, o in enumerate(orders):
            await _event(st, http, INFNO_APPROVED, o, i)
        for o in orders:
            await _status(st, o["order_no"], "sent")
        fin.pay_all()
        for o in orders:
            await _status(st, o["order_no"], "refunded")
        # refunded in an old 旬 and month (the ticker closes only the last ones)
        day = today_beijing() - timedelta(days=70)
        await _backdate(st, [o["order_no"] for o in orders], day)
        dekad, month = period_of("finance", day), period_of("tax", day)
        before = fin.state.log.snapshot()
        r = await http.post(f"{st.hub_url}/admin/refunds/closures", headers=OPS,
                            json={"target": "finance", "period": dekad.name})
        assert r.status_code == 202, r.text
        first = r.json()
        assert first["count"] == 3 and first["published"] == 1
        assert first["total"] == f"{sum(100 + i + i / 100 for i in range(3)):.2f}"
        r = await http.post(f"{st.hub_url}/admin/refunds/closures", headers=OPS,
                            json={"target": "finance", "period": dekad.name})
        assert r.json()["published"] == 0 and r.json()["runs"] == 2
        await wait_for(lambda: bool(fin.state.log.since(before, "closure:")), 10)
        await asyncio.sleep(0.5)
        # a 销号 period run twice sends once, counted at the finance simulator
        assert fin.state.log.since(before, "closure:") == {f"closure:finance:{dekad.name}:1": 1}
        r = await http.get(f"{st.hub_url}/admin/refunds/closures/finance/{dekad.name}",
                           headers=OPS)
        assert r.json()["status"] == "done" and r.json()["items"] == {"sent": 3}
        # tax: monthly RefundWriteOff, once per order, even when run twice
        tax_before = st.tax_state.log.snapshot()
        for _ in range(2):
            r = await http.post(f"{st.hub_url}/admin/refunds/closures", headers=CASEWORKER,
                                json={"target": "tax", "period": f"{day:%Y-%m}"})
            assert r.status_code == 202, r.text
        await wait_for(lambda: len(st.tax_state.log.since(tax_before, "RefundWriteOff:")) == 3,
                       15)
        assert all(n == 1 for n in st.tax_state.log.since(tax_before,
                                                          "RefundWriteOff:").values())
        assert month.month in next(iter(st.tax_state.log.since(tax_before, "RefundWriteOff:")))
        # a period that has not ended, a bad target: refused with field and reason
        r = await http.post(f"{st.hub_url}/admin/refunds/closures", headers=OPS,
                            json={"target": "finance", "period": period_of(
                                "finance", today_beijing()).name})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "period"
        # the import (1918): per-row report, good rows kept, to 到账 asked per row
        good_id = orders[1]["id_number"]
        never = make_order(rng, "X")["id_number"]
        st.tax_sim.book.arrivals[never] = 0
        csv = ("序号,姓名,身份证,退费起始时间,退费终止时间\r\n"
               f"1,张三,{good_id},2026-01,2026-03\r\n"
               f"2,李四,{good_id[:-1]}0,2026-01,2026-03\r\n"
               f"3,王五,{never},202601,202602\r\n"
               f"1,赵六,{good_id},2026-05,2026-06\r\n"
               f"5,钱七,{good_id},2026-04,2026-02\r\n").encode("gbk")
        r = await http.post(f"{st.hub_url}/admin/refunds/imports", headers=CASEWORKER,
                            params={"filename": "tf.csv"}, content=csv)
        assert r.status_code == 201, r.text
        rep = r.json()
        assert rep["accepted"] == 1 and rep["rows"] == 5
        fields = {(x["row"], x["field"]) for x in rep["refused"]}
        assert fields == {(3, "身份证"), (4, "退费起始时间"), (5, "序号"), (6, "退费终止时间")}
        assert good_id not in r.text  # masked
        r = await http.post(f"{st.hub_url}/admin/refunds/imports", headers=CASEWORKER,
                            params={"filename": "tf.csv"}, content=csv)
        assert r.status_code == 200 and r.json()["duplicate"] is True
        # 网办大厅 asks finance's payments to a unit, signed as the channel
        unit = orders[0]["unit_credit_code"]
        body = {"unit_credit_code": unit, "start_date": str(today_beijing() - timedelta(days=1)),
                "end_date": str(today_beijing())}
        r = await http.post(f"{st.hub_url}/channels/online_hall/refunds/payments", json=body,
                            auth=_hall(st))
        assert r.status_code == 200, r.text
        assert r.json()["count"] == 1 and r.json()["total"] == orders[0]["amount"]
        r = await http.post(f"{st.hub_url}/channels/online_hall/refunds/payments", json=body)
        assert r.status_code == 401
        # the demo round adds up
        lines, flow = await refunds_round(st, http)
        assert flow.balanced and flow.duplicates == 0 and flow.sent > 0, (lines, flow)
        assert flow.delivered > 0 and flow.rejected > 0


def _hall(st: Stack) -> Any:
    from adapters.signing import SignedAuth
    from contracts.signing import CHANNEL_HEADERS

    cfg = st.settings.channels["online_hall"]
    return SignedAuth("online_hall", cfg.secret.get_secret_value(), names=CHANNEL_HEADERS)
