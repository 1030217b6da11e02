"""F7 困难人员, the gaps closed after the first build, end to end on real servers:
补发 to a department (issue 11), counted at the departments simulator; the student
batch's 困难人员 check against the hub's 困难人员库 (seed 003 line 1816); the
医疗救助平台's 人员认定 query and the daily 阳光惠民 push (1497)."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from adapters.signing import SignedAuth
from config.settings import load_settings
from contracts.difficulty import ASSISTANCE
from simulators.assistance import query_person
from simulators.core import CoreStore
from simulators.departments import make_records, send_list
from simulators.harness import fast_policies, running_stack
from simulators.simkit import Fault
from tools.demo_difficulty import FIRST, review_all
from tools.demo_flows import wait_for

pytestmark = pytest.mark.integration

MONTH = "2026-11"


def _stack(**kw: Any) -> Any:
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    return running_stack(s, store=store, overrides=fast_policies(s, max_attempts=3) | kw)


async def test_resend_to_a_department_is_a_new_delivery_and_its_retry_is_not() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        sims = st.difficulty
        assert sims is not None
        rows = make_records(random.Random(21), "veterans", 2, month=MONTH)
        r = await send_list(http, st.hub_url, "veterans", MONTH, "V1", rows,
                            sims.secret("veterans"))
        ids = [x["record_id"] for x in r.json()["records"]]
        await review_all(st, http)
        assert await wait_for(lambda: sims.inbox.count("synced") == 2, 20)
        log = sims.dept_state.log
        before = log.snapshot()
        url = f"{st.hub_url}/admin/difficulty/resend"
        body = {"dept": "veterans", "month": MONTH, "reason": "部门系统丢失",
                "resend_id": "rs-veterans-0001"}
        assert (await http.post(url, json=body)).status_code == 401  # the door authenticates
        r = await http.post(url, json=body, headers=FIRST)
        assert r.status_code == 200, r.text
        assert {x["record_id"] for x in r.json()["sent"]} == set(ids)
        assert await wait_for(lambda: len(sims.inbox.resent) == 2, 20)
        assert log.summary_since(before)["effects"] == 2
        assert {p["record_id"] for p in sims.inbox.resent} == set(ids)
        assert all(p["status"] == "synced" and p["list_ref"] == "V1" for p in sims.inbox.resent)
        # the caller's retry of the same 补发: no second delivery
        r = await http.post(url, json=body, headers=FIRST)
        assert r.status_code == 200
        await asyncio.sleep(1.0)
        assert len(sims.inbox.resent) == 2 and log.summary_since(before)["effects"] == 2
        # a deliberate 补发 of one person: a new delivery of that record only
        r = await http.post(url, headers=FIRST, json={
            "dept": "veterans", "month": MONTH, "reason": "补发一人",
            "id_number": rows[0]["id_number"]})
        assert r.status_code == 200 and [x["record_id"] for x in r.json()["sent"]] == [ids[0]]
        assert await wait_for(lambda: len(sims.inbox.resent) == 3, 20)
        assert sims.inbox.resent[-1]["record_id"] == ids[0]
        summary = log.summary_since(before)
        assert summary["effects"] == 3 and summary["duplicates"] == {}
        assert sims.inbox.bad_signatures == 0
        # nothing that month for another department; audited with the ID masked
        r = await http.post(url, headers=FIRST, json=body | {"dept": "agriculture"})
        assert r.status_code == 404
        r = await http.get(f"{st.hub_url}/admin/audit", headers=FIRST,
                           params={"action": "difficulty.resend"})
        entries = r.json()
        assert len(entries) == 4, r.text
        assert {(e["actor"], e["role"]) for e in entries} == {("dev-caseworker", "caseworker")}
        assert all(rows[0]["id_number"] not in str(e) for e in entries)


async def test_a_student_the_difficulty_store_holds_is_reported_difficulty(
        tmp_path: Path) -> None:
    """1816: the student batch's 困难人员 check asks the hub's 困难人员库 too: a student
    held with an identity in force is 困难人员 though tax enrolled them plainly."""
    from bench.student_batch import make_students_xlsx

    source = tmp_path / "students.xlsx"
    make_students_xlsx(source, 20, seed=77, difficulty=0, unknown_community=0)
    wb = openpyxl.load_workbook(source, read_only=True)
    cells = list(wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    col = list(cells[0]).index("身份证号")
    held, ended = str(cells[3][col]), str(cells[5][col])
    async with _stack() as st, httpx.AsyncClient(timeout=30, headers=FIRST) as http:
        sims = st.difficulty
        assert sims is not None
        base = {"change": "增加", "identity": "01", "name": "王芳", "start_date": f"{MONTH}-01"}
        r = await send_list(http, st.hub_url, "civil_affairs", MONTH, "S1",
                            [base | {"id_number": held}, base | {"id_number": ended}],
                            sims.secret("civil_affairs"))
        assert r.json()["kept"] == 2, r.text
        await review_all(st, http)
        r = await send_list(http, st.hub_url, "civil_affairs", MONTH, "S2",
                            [base | {"id_number": ended, "change": "减少",
                                     "end_date": f"{MONTH}-15"}], sims.secret("civil_affairs"))
        await review_all(st, http)
        tax_before = st.tax_state.log.snapshot()
        r = await http.post(f"{st.hub_url}/admin/batches/students/enroll",
                            params={"filename": "students.xlsx"}, content=source.read_bytes())
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        job: dict[str, Any] = {}
        for _ in range(300):
            job = (await http.get(f"{st.hub_url}/admin/batches/{job_id}")).json()
            if job["state"] != "running":
                break
            await asyncio.sleep(0.1)
        assert job["state"] == "finished", job
        assert (job["counts"]["success"], job["counts"]["difficulty"]) == (19, 1), job
        assert st.tax_state.log.summary_since(tax_before)["effects"] >= 1  # tax was asked
        r = await http.get(f"{st.hub_url}/admin/batches/{job_id}/files/difficulty.csv")
        [row] = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))[1:]
        assert row[1] == held and row[7] == "HUB_DIFFICULTY" and "01 低保" in row[8]


async def test_the_platform_asks_the_hub_whether_a_person_is_recognised() -> None:
    """人员认定 (1497): the 医疗救助平台 asks over the signed door; answered from what the
    hub holds after 复核, masked; every other caller refused."""
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        sims = st.difficulty
        assert sims is not None
        secret = sims.partners[ASSISTANCE].secret.get_secret_value()
        rows = make_records(random.Random(31), "trade_union", 2, month=MONTH)
        person = rows[0]["id_number"]
        r = await query_person(http, st.hub_url, person, secret)
        assert r.status_code == 200, r.text
        assert r.json()["recognised"] is False and r.json()["identities"] == []
        await send_list(http, st.hub_url, "trade_union", MONTH, "Q1", rows,
                        sims.secret("trade_union"))
        r = await query_person(http, st.hub_url, person, secret)
        assert r.json()["recognised"] is False  # not before 复核
        await review_all(st, http)
        assert await wait_for(lambda: len(sims.platform.records) == 2, 20)
        r = await query_person(http, st.hub_url, person, secret)
        got = r.json()
        assert got["recognised"] is True and got["since"] == f"{MONTH}-01"
        assert [(i["identity"], i["label"], i["active"], i["primary"])
                for i in got["identities"]] == [("06", "特困职工", True, True)]
        # the platform holds the same person in force (its own book, counted there)
        assert (person, "06") in sims.platform.in_force()
        assert person not in r.text and rows[0]["name"] not in r.text
        assert rows[0]["phone"] not in r.text
        # unsigned, a department's key, a bad ID: refused
        r = await http.post(f"{st.hub_url}/partners/assistance/queries/person",
                            json={"id_number": person})
        assert r.status_code == 401
        r = await http.post(f"{st.hub_url}/partners/assistance/queries/person",
                            json={"id_number": person},
                            auth=SignedAuth("difficulty_trade_union",
                                            sims.secret("trade_union")))
        assert r.status_code in (401, 403), r.text
        r = await query_person(http, st.hub_url, person, "not-the-secret")
        assert r.status_code == 401
        r = await query_person(http, st.hub_url, person[:-1] + "0"
                               if person[-1] != "0" else person[:-1] + "1", secret)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "id_number"


async def test_sunshine_pushes_the_table_once_a_day_and_the_rest_after_a_failure() -> None:
    """阳光惠民 (1497): the 救助人员 table (identities in force after 复核) pushed by a run
    of the admin API (the ticker's run at start found nothing); a second run the same day
    pushes nothing new; a run stopped by 阳光惠民 failing is finished by the next."""
    async with _stack() as st, httpx.AsyncClient(timeout=15, headers=FIRST) as http:
        sims = st.difficulty
        assert sims is not None and sims.sunshine is not None
        sun = sims.sunshine
        rows = make_records(random.Random(41), "civil_affairs", 3, month=MONTH)
        r = await send_list(http, st.hub_url, "civil_affairs", MONTH, "Y1", rows,
                            sims.secret("civil_affairs"))
        ids = {x["record_id"] for x in r.json()["records"]}
        url = f"{st.hub_url}/admin/difficulty/sunshine/runs"
        r = await http.post(url)  # nothing approved yet: nothing to push
        assert r.status_code == 200 and r.json()["pushed"] == 0 and sun.pages == 0
        await review_all(st, http)
        sun.state.faults.append(Fault(kind="http_5xx", count=1))
        r = await http.post(url)
        assert r.status_code == 502 and r.json()["failed"] == 3, r.text
        assert sun.state.log.summary()["effects"] == 0
        r = await http.get(f"{st.hub_url}/admin/difficulty/sync-log",
                           params={"status": "failed"})
        assert {e["target"] for e in r.json()["entries"]} == {"sunshine"}
        r = await http.post(url)
        assert r.status_code == 200 and r.json()["pushed"] == 3, r.text
        day = r.json()["day"]
        assert set(sun.rows(day)) == ids
        assert all("*" in x["id_number"] and "*" in x["name"] for x in sun.rows(day).values())
        assert not any(x["id_number"] in str(sun.days) for x in rows)
        before = sun.state.log.snapshot()
        r = await http.post(url)  # the same day again: nothing new
        assert r.status_code == 200 and r.json()["pushed"] == 0
        assert sun.state.log.summary_since(before)["effects"] == 0 and sun.pages == 1
        summary = sun.state.log.summary()
        assert summary["effects"] == 3 and summary["duplicates"] == {}
        assert sun.bad_signatures == 0
        async with httpx.AsyncClient(timeout=15) as anonymous:
            assert (await anonymous.post(url)).status_code == 401
        r = await http.get(f"{st.hub_url}/admin/audit", params={"action": "difficulty.sunshine"})
        assert [e["outcome"] for e in r.json()][:3] == ["ok", "ok", "failed"]
