"""F7 困难人员 end to end on real servers: the departments' lists through 校验, 比对, 初审
and 复核 to the 医疗救助平台 and core, and the status back to each department; every
side effect counted at the simulators (platform, core, departments)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from config.settings import load_settings
from contracts.difficulty import DEPARTMENTS
from contracts.ids import make_id_number
from simulators.core import CoreStore
from simulators.departments import make_records, send_list
from simulators.harness import fast_policies, running_stack
from simulators.simkit import Fault
from tools.demo_difficulty import FIRST, SECOND, difficulty_round, review_all
from tools.demo_flows import wait_for

pytestmark = pytest.mark.integration

MONTH = "2026-11"


def _stack(**kw: Any) -> Any:
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    return running_stack(s, store=store, overrides=fast_policies(s, max_attempts=3) | kw)


async def test_a_month_from_every_department_reaches_platform_core_and_status_back() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        lines, flow = await difficulty_round(st, http, per_department=4, bad_per_department=3)
        sims = st.difficulty
        assert sims is not None
        # 4 departments x (4 + 3 bad) rows + a file of 3 + 1 bad
        assert flow.sent == 4 * 7 + 4
        assert flow.rejected == 4 * 3 + 1  # every bad row refused in the receipt
        assert flow.delivered == 4 * 4 + 3
        assert flow.dead == 0 and flow.duplicates == 0, lines
        assert len(sims.platform.records) == 19
        assert sims.inbox.count("synced") == 19
        assert {d for d in sims.inbox.statuses} == set(DEPARTMENTS)
        assert sims.dept_state.log.summary()["effects"] == 19
        assert sims.inbox.bad_signatures == 0 and sims.platform.bad_signatures == 0
        # core holds 进入 of every identity
        assert len(st.store.difficulty) == 19
        assert all(v["chg_type"] == "1" for v in st.store.difficulty.values())


async def test_bad_rows_refused_with_row_field_reason_and_unknown_or_unsigned_refused() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        sims = st.difficulty
        assert sims is not None
        rows = make_records(random.Random(3), "civil_affairs", 2, month=MONTH, bad=5)
        r = await send_list(http, st.hub_url, "civil_affairs", MONTH, "L1", rows,
                            sims.secret("civil_affairs"))
        assert r.status_code == 200, r.text
        got = {(x["row"], x["field"]) for x in r.json()["refused"]}
        assert got == {(3, "identity"), (4, "id_number"), (5, "id_number"), (6, "end_date"),
                       (7, "identity")}
        assert r.json()["kept"] == 2
        assert "*" in str(r.json()["refused"]) or all(
            rows[0]["id_number"] not in x["reason"] for x in r.json()["refused"])
        # another department's secret, an unknown department, no signature
        r = await send_list(http, st.hub_url, "civil_affairs", MONTH, "L2", rows,
                            sims.secret("veterans"))
        assert r.status_code == 401
        r = await send_list(http, st.hub_url, "police", MONTH, "L3", rows, "x")
        assert r.status_code == 401
        r = await http.post(f"{st.hub_url}/partners/departments/trade_union/lists",
                            json={"list_id": "L4", "month": MONTH, "records": rows})
        assert r.status_code == 401
        r = await http.get(f"{st.hub_url}/admin/difficulty/reviews")
        assert r.status_code == 401


async def test_second_review_needs_another_caseworker_and_rejection_is_told() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        sims = st.difficulty
        assert sims is not None
        rows = make_records(random.Random(5), "trade_union", 2, month=MONTH)
        r = await send_list(http, st.hub_url, "trade_union", MONTH, "T1", rows,
                            sims.secret("trade_union"))
        ids = [x["record_id"] for x in r.json()["records"]]
        url = f"{st.hub_url}/admin/difficulty/reviews"
        r = await http.post(url, headers=FIRST, json={"record_ids": ids, "decision": "approve"})
        assert [x["status"] for x in r.json()["results"]] == ["second_review"] * 2
        r = await http.post(url, headers=FIRST, json={"record_ids": ids, "decision": "approve"})
        assert [x["outcome"] for x in r.json()["results"]] == ["same_reviewer"] * 2
        r = await http.get(url, params={"step": "second"}, headers=FIRST)
        assert {x["id"] for x in r.json()["records"]} == set(ids)
        assert all("*" in x["id_number"] and "*" in x["name"] for x in r.json()["records"])
        r = await http.post(url, headers=SECOND, json={"record_ids": ids[:1],
                                                       "decision": "reject", "reason": "材料不全"})
        r = await http.post(url, headers=SECOND, json={"record_ids": ids[1:],
                                                       "decision": "approve"})
        assert await wait_for(lambda: sims.inbox.count() == 2, 20)
        assert sims.inbox.status_of("trade_union", ids[0]) == "refused"
        assert "材料不全" in sims.inbox.of("trade_union")[ids[0]]["reason"]
        assert sims.inbox.status_of("trade_union", ids[1]) == "synced"
        assert list(sims.platform.records) == [ids[1]]


async def test_failed_core_sync_alerts_logs_and_tells_the_department() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        sims = st.difficulty
        assert sims is not None
        st.core_state.faults.append(Fault(kind="reject", operation="H4001", code="C401",
                                          text="人员未参保"))
        st.core_state.faults.append(Fault(kind="http_5xx", operation="H4001"))
        rows = make_records(random.Random(9), "agriculture", 2, month=MONTH)
        r = await send_list(http, st.hub_url, "agriculture", MONTH, "A1", rows,
                            sims.secret("agriculture"))
        ids = [x["record_id"] for x in r.json()["records"]]
        st.core_state.faults[0].match = rows[0]["id_number"]
        await review_all(st, http)
        # one refused by core at once; the other 5xx until its attempts run out (DLQ)
        assert await wait_for(lambda: sims.inbox.count() == 2, 40)
        assert {sims.inbox.status_of("agriculture", i) for i in ids} == {"refused"}
        r = await http.get(f"{st.hub_url}/admin/difficulty/sync-log",
                           params={"status": "failed"}, headers=FIRST)
        entries = r.json()["entries"]
        assert {e["record_id"] for e in entries if e["target"] == "core"} == set(ids)
        assert all(e["alert"] and "*" in e["id_number"] for e in entries)
        assert st.store.difficulty == {}  # core took nothing
        assert len(sims.platform.records) == 2  # the platform did
        r = await http.get(f"{st.hub_url}/admin/difficulty/records/{ids[0]}", headers=FIRST)
        assert r.json()["status"] == "sync_failed"

        async def parked() -> int:
            r = await http.get(f"{st.hub_url}/admin/dead-letters", headers=FIRST,
                               params={"route": "core.difficulty"})
            return int(r.json()["total"])

        for _ in range(100):  # the 5xx one is parked in the DLQ (the refused one is not)
            if await parked() == 1:
                break
            await asyncio.sleep(0.2)
        assert await parked() == 1


async def test_ending_the_treatment_identity_asks_the_caseworker_to_choose() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        sims = st.difficulty
        assert sims is not None
        person = make_id_number(random.Random(11))
        base = {"id_number": person, "name": "王芳", "start_date": f"{MONTH}-01"}
        r = await send_list(http, st.hub_url, "civil_affairs", MONTH, "C1",
                            [base | {"change": "增加", "identity": "01"}],
                            sims.secret("civil_affairs"))
        assert r.status_code == 200
        await review_all(st, http)
        r = await send_list(http, st.hub_url, "agriculture", MONTH, "G1",
                            [base | {"change": "增加", "identity": "07"}],
                            sims.secret("agriculture"))
        await review_all(st, http)
        assert await wait_for(lambda: len(st.store.difficulty) == 2, 20)
        assert st.store.difficulty[f"{person}:01"]["trt_flag"] == "1"
        assert st.store.difficulty[f"{person}:07"]["trt_flag"] == "0"
        r = await send_list(http, st.hub_url, "civil_affairs", MONTH, "C2",
                            [base | {"change": "减少", "identity": "01",
                                     "end_date": f"{MONTH}-20"}],
                            sims.secret("civil_affairs"))
        assert r.json()["records"][0]["comparison"] == "ended"
        await review_all(st, http)
        assert await wait_for(lambda: st.store.difficulty[f"{person}:01"]["chg_type"] == "2", 20)
        r = await http.get(f"{st.hub_url}/admin/difficulty/cases", headers=FIRST)
        cases = r.json()["cases"]
        assert len(cases) == 1 and cases[0]["options"] == ["07"]
        r = await http.post(f"{st.hub_url}/admin/difficulty/cases/{cases[0]['id']}",
                            headers=FIRST, json={"identity": "07"})
        assert r.status_code == 200, r.text
        assert await wait_for(lambda: st.store.difficulty[f"{person}:07"]["trt_flag"] == "1", 20)
        r = await http.post(f"{st.hub_url}/admin/difficulty/cases/{cases[0]['id']}",
                            headers=FIRST, json={"identity": "07"})
        assert r.status_code == 409
        await asyncio.sleep(0.5)
        assert st.core_state.log.summary()["duplicates"] == {}
