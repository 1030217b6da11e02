"""F14 对账 and 单边帐 end to end on real servers, in ONE stack: institutions (HIS simulator)
call the hub's signed national door (3201, 9101/3202, 9102), the hub asks the core ledger
simulator, diagnoses to the setl_id, resolves 单边帐 by rule and by a caseworker over the
``institution.resolve`` lane (2208 / H3203 counted at the HIS), re-reconciles 平, and the
demo round adds up."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from config.settings import load_settings
from contracts.institution_recon import partner_of
from contracts.national import now_cst
from simulators.harness import fast_policies, running_stack
from simulators.institutions import CODES, HisSide, ReconSims
from simulators.simkit import Fault
from tools.demo_reconciliation import reconciliation_round

pytestmark = pytest.mark.integration

CASEWORKER = {"Authorization": "Bearer dev-caseworker"}
READER = {"Authorization": "Bearer dev-readonly"}


async def _until(check: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_reconciliation_both_ways_one_sided_resolved_and_demo_round() -> None:
    s = load_settings()
    async with running_stack(s, overrides=fast_policies(s)) as st, \
            httpx.AsyncClient(timeout=15) as http:
        sims: ReconSims = st.sims["reconciliation"]
        book, his = sims.book, sims.his_state
        a, b, _ = CODES
        day = now_cst().date() - timedelta(days=1)
        side_a = sims.his_side(st.hub_url, a)

        # balanced
        book.settle(a, day, 3)
        r = await side_a.send_totals(http, day)
        assert r.status_code == 200, r.text
        assert r.json()["infcode"] == 0
        assert r.json()["output"]["stmtinfo"]["stmt_rslt"] == "0"

        # refused: does not add up / float / another institution's code / bad signature
        bad = {**side_a.totals(day), "fund_pay_sumamt": "0.00"}
        r = await side_a.send_totals(http, day, bad)
        assert r.status_code == 422
        assert r.json()["infcode"] == -1
        assert r.json()["output"]["errors"][0]["field"] == "data.medfee_sumamt"
        raw = side_a.envelope("3201", {"data": {**side_a.totals(day), "cash_payamt": 0.5}}, a)
        r = await side_a.call(http, "3201", {}, raw=raw)
        assert r.status_code == 422
        assert r.json()["output"]["errors"][0]["field"] == "data.cash_payamt"
        r = await side_a.send_totals(http, day, {**side_a.totals(day), "fixmedins_code": b})
        assert r.status_code == 422
        assert "not the institution" in r.json()["output"]["errors"][0]["reason"]
        forger = HisSide(st.hub_url, a, "not-the-secret", book)
        assert (await forger.send_totals(http, day)).status_code == 401
        # detail whose count does not match its totals: refused, nothing stored
        count = {**side_a.totals(day), "fixmedins_setl_cnt": 4}
        r = await side_a.send_detail(http, day, count)
        assert r.status_code == 422
        assert r.json()["output"]["errors"][0]["field"] == "data.fixmedins_setl_cnt"

        # 不平 by a differing field: 9101 + 3202 -> result file names setl_id and field
        rows = book.settle(b, day, 3)
        book.plant_difference(b, day, rows[1].setl_id, "2.00")
        side_b = sims.his_side(st.hub_url, b)
        r = await side_b.send_totals(http, day)
        info = r.json()["output"]["stmtinfo"]
        assert info["stmt_rslt"] == "1"
        assert info["differing"]["cash_payamt"][1] != info["differing"]["cash_payamt"][0]
        assert [(f["setl_id"], sorted(f["fields"])) for f in info["findings"]] == [
            (rows[1].setl_id, ["cash_payamt", "medfee_sumamt"])]
        r = await side_b.send_detail(http, day)
        assert r.status_code == 200, r.text
        no = r.json()["output"]["fileinfo"]["file_qury_no"]
        got = await side_b.download(http, no)
        assert got.status_code == 200
        assert (await side_a.download(http, no)).status_code == 404  # not a's file
        # ... and the differing amount is a held case only a caseworker's correct resolves
        [differs] = (await http.get(f"{st.hub_url}/admin/reconciliation/cases",
                                    headers=READER, params={"fixmedins_code": b,
                                                            "stmt_date": day.isoformat()})
                     ).json()["cases"]
        assert (differs["setl_id"], differs["kind"], differs["status"], differs["rule"]) == (
            rows[1].setl_id, "amount_differs", "held", "caseworker")
        url_b = f"{st.hub_url}/admin/reconciliation/cases/{differs['id']}"
        r = await http.post(url_b, headers=CASEWORKER, json={"action": "reverse",
                                                            "reason": "x"})
        assert r.status_code == 422
        r = await http.post(url_b, headers=CASEWORKER, json={"action": "correct",
                                                            "reason": "core's amount"})
        assert r.status_code == 202, r.text

        # 单边帐, hub-initiated: rule reverses (after 2 HIS 5xx) and completes; the 跨省 one
        # waits for a caseworker; a young institution-only one waits for the core
        d2 = day - timedelta(days=1)
        book.settle(a, d2, 2)
        local = book.plant_one_sided(a, d2, "his", scope="local")
        yidi = book.plant_one_sided(a, d2, "core", scope="provincial")
        cross = book.plant_one_sided(a, d2, "his", scope="national", chnl_type="2")
        his.faults.append(Fault(kind="http_5xx", count=2, operation="2208",
                                match=local.setl_id))
        r = await http.post(f"{st.hub_url}/admin/reconciliation/runs", headers=CASEWORKER,
                            json={"stmt_date": d2.isoformat(), "fixmedins_codes": [a]})
        assert r.status_code == 200, r.text
        run = r.json()["runs"][0]
        assert {f["setl_id"]: f["kind"] for f in run["findings"]} == {
            local.setl_id: "institution_only", yidi.setl_id: "core_only",
            cross.setl_id: "institution_only"}
        assert {c["setl_id"]: c["rule"] for c in run["cases"]}[cross.setl_id] == "caseworker"

        async def resolved_by_rule() -> bool:
            return his.log.effects[f"reverse:{a}:{local.setl_id}"] == 1 and \
                his.log.effects[f"complete:{a}:{yidi.setl_id}"] == 1
        await _until(resolved_by_rule)
        cases = (await http.get(f"{st.hub_url}/admin/reconciliation/cases", headers=READER,
                                params={"fixmedins_code": a, "stmt_date": d2.isoformat()})
                 ).json()["cases"]
        held = next(c for c in cases if c["setl_id"] == cross.setl_id)
        assert held["status"] == "held"
        url = f"{st.hub_url}/admin/reconciliation/cases/{held['id']}"
        r = await http.post(url, headers=CASEWORKER, json={"action": "complete",
                                                          "reason": "x"})
        assert r.status_code == 422  # complete is for a core-only settlement
        r = await http.post(url, headers=READER, json={"action": "reverse", "reason": "x"})
        assert r.status_code == 403
        first = await http.post(url, headers=CASEWORKER,
                                json={"action": "reverse", "reason": "跨省 void"})
        again = await http.post(url, headers=CASEWORKER,
                                json={"action": "reverse", "reason": "跨省 void"})
        assert first.status_code == 202 and again.json()["already"] is True

        async def rebalanced() -> bool:
            got = (await http.get(f"{st.hub_url}/admin/reconciliation/cases",
                                  headers=READER, params={"fixmedins_code": a,
                                                          "stmt_date": d2.isoformat()})
                   ).json()["cases"]
            c = next(x for x in got if x["setl_id"] == cross.setl_id)
            return bool(c["status"] == "resolved" and c["rereconciled"] == "balanced")
        await _until(rebalanced)
        assert his.log.effects[f"reverse:{a}:{cross.setl_id}"] == 1  # asked twice, once

        async def corrected() -> bool:
            got = (await http.get(f"{st.hub_url}/admin/reconciliation/cases",
                                  headers=READER, params={"fixmedins_code": b,
                                                          "stmt_date": day.isoformat()})
                   ).json()["cases"]
            return bool(got[0]["status"] == "resolved" and got[0]["rereconciled"] == "balanced")
        await _until(corrected)
        assert his.log.effects[f"complete:{b}:{rows[1].setl_id}"] == 1
        audit = await st.hub.deps.journal.engine.connect()
        try:
            n = (await audit.execute(text(
                "select count(*) from audit_log where action = 'recon.one_sided.reverse'"))
                ).scalar_one()
            m = (await audit.execute(text(
                "select count(*) from audit_log where action = "
                "'recon.amount_differs.correct'"))).scalar_one()
        finally:
            await audit.close()
        assert n == 1 and m == 1

        # a 移动支付 notice: a row at the hub, once
        mobile = sims.mobile(st.hub_url)
        row, r = await mobile.settle(http, b, day)
        assert r.status_code == 200 and r.json()["output"]["recorded"] is True
        r = await mobile.call(http, "H3205", {"data": {
            "fixmedins_code": b, "setl_date": day.isoformat(), "row": row.wire()}})
        assert r.json()["output"]["recorded"] is False  # the same notice again: one row
        r = await side_a.call(http, "H3205", {"data": {}})
        assert r.status_code == 403  # an institution may not send notices
        assert partner_of(a) in st.settings.partners

        # the demo round, on the same stack, adds up
        lines, flow = await reconciliation_round(st, http)
        assert flow.balanced and flow.duplicates == 0, (flow, lines)
        if flow.dead:
            dump = (await http.get(f"{st.hub_url}/admin/reconciliation/cases",
                                   headers=READER)).json()["cases"]
            lines += [f"{c['fixmedins_code']} {c['stmt_date']} {c['setl_id']} {c['status']} "
                      f"{c['rule']} {c['rereconciled']} {c['reason']}" for c in dump]
            lines.append(str(dict(his.log.effects)))
        assert flow.sent == flow.delivered + flow.rejected and flow.dead == 0, "\n".join(lines)
