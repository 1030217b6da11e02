"""F7 医疗救助平台 end to end on real servers (seed 003 lines 1482, 1487, 1497): 医疗费用查询,
core's 结算费用同步 through the lane to the platform (retry, refusal, DLQ), the monthly
医疗救助结算数据 (resumable, once per month, core's header checked) and 阳光惠民's 救助费用
and 机构 tables; every side effect counted at the simulators. One stack for all of it."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from config.settings import load_settings
from contracts.assistance import AMOUNTS, month_bounds, settlement_ref
from contracts.clock import today_beijing
from contracts.ids import make_id_number
from simulators.assistance import emit_settlement, make_settlement, query_expenses
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from simulators.simkit import Fault
from tools.demo_difficulty import FIRST, assistance_round, sunshine_now
from tools.demo_flows import wait_for

pytestmark = pytest.mark.integration


def _stack() -> Any:
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    return running_stack(s, store=store, overrides=fast_policies(
        s, max_attempts=3, delays_ms=(100, 200, 400)))


async def test_the_platform_exchanges_through_the_hub() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=20) as http:
        sims = st.difficulty
        assert sims is not None and sims.sunshine is not None
        lines, flow = await assistance_round(st, http, recipients=4)
        # the round, counted at the simulators
        assert flow.balanced and flow.duplicates == 0, lines
        assert flow.dead == 0, lines
        assert flow.rejected == 2, lines  # a stranger's settlement, one the platform refused
        platform, book = sims.platform, st.store.settlements
        assert len(platform.settlements) == 3  # 4 recipients' events, one refused
        assert all(p["id_number"] and p["identity"] for p in platform.settlements.values())
        month = next(iter(platform.data))
        assert platform.month_check(month) == "complete"
        assert platform.data_pages == 1  # the failed page, then the same page once
        assert sims.platform_state.log.replays == 0 or sims.platform_state.log.summary()[
            "duplicates"] == {}
        secret = sims.partners["assistance"].secret.get_secret_value()
        mon = month.replace("-", "")
        first, last = month_bounds(mon)
        person = next(iter(platform.data[month].values()))["id_number"]

        # 医疗费用查询: masked, amounts as fen-exact strings adding up to the totals
        r = await query_expenses(http, st.hub_url, person, first.isoformat(),
                                 last.isoformat(), secret)
        assert r.status_code == 200, r.text
        got = r.json()
        assert person not in r.text and got["id_number"].startswith(person[:6])
        assert "*" in got["name"]
        expected = [s for s in book.between(person, first, last)]
        assert [e["setl_id"] for e in got["expenses"]] == [s.setl_id for s in expected]
        for k in AMOUNTS:
            assert Decimal(got["totals"][k]) == sum((Decimal(e[k]) for e in got["expenses"]),
                                                    Decimal("0.00"))
            assert all(len(e[k].split(".")[1]) == 2 for e in got["expenses"])
        # refusals: a stranger 404, outside the periods 403, a bad ID 422, unsigned 401,
        # an end before the start 422 naming end_date
        r = await query_expenses(http, st.hub_url, make_id_number(random.Random(5)),
                                 first.isoformat(), last.isoformat(), secret)
        assert r.status_code == 404 and r.json()["field"] == "id_number"
        r = await query_expenses(http, st.hub_url, person, "2001-01-01", "2001-02-01", secret)
        assert r.status_code == 403 and r.json()["code"] == "OUTSIDE_ASSISTANCE_PERIOD"
        r = await query_expenses(http, st.hub_url, person[:-1] + "0" if person[-1] != "0"
                                 else person[:-1] + "1", first.isoformat(), last.isoformat(),
                                 secret)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "id_number"
        r = await query_expenses(http, st.hub_url, person, last.isoformat(),
                                 first.isoformat(), secret)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "end_date"
        r = await http.post(f"{st.hub_url}/partners/assistance/queries/expenses",
                            json={"id_number": person, "start_date": first.isoformat(),
                                  "end_date": last.isoformat()})
        assert r.status_code == 401
        st.core_state.faults.append(Fault(kind="http_5xx", operation="H4002", count=5))
        r = await query_expenses(http, st.hub_url, person, first.isoformat(),
                                 last.isoformat(), secret)
        assert r.status_code == 503 and r.json()["field"] == "core"
        st.core_state.faults.clear()

        # 结算费用同步: a settlement the platform never takes ends dead (DLQ), said on its row
        today = today_beijing()
        dead = make_settlement(person, datetime(today.year, today.month, today.day, 11),
                               4_200, setl_id=f"D{today:%Y%m%d}", name=book.name_of(person))
        sims.platform_state.faults.append(Fault(kind="http_5xx",
                                                match=settlement_ref(dead.setl_id)))
        r = await emit_settlement(http, st.hub_url, dead, st.partner_secret("core"),
                                  seq=500, book=book)
        assert r.status_code == 200 and r.json()["output"]["status"] == "queued", r.text

        async def dead_rows() -> list[dict[str, Any]]:
            got = await http.get(f"{st.hub_url}/admin/assistance/settlements",
                                 params={"sync_status": "dead"}, headers=FIRST)
            return list(got.json()["settlements"])

        rows: list[dict[str, Any]] = []
        for _ in range(150):
            rows = await dead_rows()
            if rows:
                break
            await wait_for(lambda: False, 0.1)
        assert [x["setl_id"] for x in rows] == [dead.setl_id]
        assert person not in str(rows) and "503" in rows[0]["sync_reason"]
        sims.platform_state.faults.clear()
        for _ in range(100):  # the DLQ archiver keeps it
            r = await http.get(f"{st.hub_url}/admin/dead-letters", headers=FIRST)
            if "assistance.settlement_sync" in r.text:
                break
            await wait_for(lambda: False, 0.1)
        assert r.status_code == 200 and "assistance.settlement_sync" in r.text
        # a bad settlement names core's field; an unsigned event is refused
        bad = dead.model_dump() | {"setl_id": "B1"}
        wire = (await _wire(bad)) | {"maf_pay": "1.005"}
        r = await http.post(f"{st.hub_url}/partners/core/settlements",
                            json=_envelope(wire), auth=st.partner_auth("core"))
        assert r.status_code == 422 and "maf_pay" in r.json()["err_msg"]
        r = await http.post(f"{st.hub_url}/partners/core/settlements", json=_envelope(wire))
        assert r.status_code == 401

        # the month again: nothing pushed twice; a month whose header core gets wrong fails
        r = await http.post(f"{st.hub_url}/admin/assistance/settlement-runs",
                            json={"month": month}, headers=FIRST)
        assert r.status_code == 200 and r.json()["pushed"] == 0
        prior = f"{today.year:04d}-{today.month:02d}"  # this month: its recipients are held
        book.bad_headers.add(prior.replace("-", ""))
        r = await http.post(f"{st.hub_url}/admin/assistance/settlement-runs",
                            json={"month": prior}, headers=FIRST)
        assert r.status_code == 502 and "header" in r.json()["detail"], r.text
        r = await http.post(f"{st.hub_url}/admin/assistance/settlement-runs",
                            json={"month": "2099-01"}, headers=FIRST)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "month"]
        r = await http.post(f"{st.hub_url}/admin/assistance/settlement-runs",
                            json={"month": month}, headers={"Authorization": "Bearer dev-ro"})
        assert r.status_code in (401, 403)
        r = await http.get(f"{st.hub_url}/admin/assistance/settlement-runs", headers=FIRST)
        got_runs = {x["month"]: x for x in r.json()["runs"]}
        assert got_runs[mon]["status"] == "done" and got_runs[mon]["runs"] == 4
        assert got_runs[prior.replace("-", "")]["status"] == "failed"

        # 阳光惠民: the tables again the same day push nothing new; rows are masked
        sun = sims.sunshine
        day = today.isoformat()
        snap = sun.tables_log.snapshot()
        await sunshine_now(st)  # the dead settlement is a new row of the 救助费用 table
        assert sun.tables_log.since(snap) == {
            f"fees:{day}:{settlement_ref(dead.setl_id)}": 1}
        snap = sun.tables_log.snapshot()
        await sunshine_now(st)
        assert sun.tables_log.since(snap) == {}
        fees = sun.table("fees", day)
        assert fees and all("*" in x["id_number"] and "*" in x["name"] for x in fees.values())
        assert not any(p in str(fees) for p in [person])
        assert len(sun.table("institutions", day)) == len(book.institutions)
        assert sun.bad_signatures == 0 and platform.bad_signatures == 0


async def _wire(values: dict[str, Any]) -> dict[str, Any]:
    from contracts.assistance import Settlement, settlement_to_wire
    return settlement_to_wire(Settlement.model_validate(values))


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    from contracts.national import NationalRequest, format_inf_time, make_msgid, now_cst
    now = now_cst()
    return NationalRequest(infno="H4005", msgid=make_msgid("NJYBCORE0001", now, 9),
                           recer_sys_code="NJYBHUB", opter="core", opter_name="医保核心",
                           inf_time=format_inf_time(now), input={"data": data}).to_wire()
