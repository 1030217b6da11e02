"""F12 工会互助 end to end on real servers: the union simulator sends its tables and cases
through the signed door, the hub accepts, adjudicates, closes and archives them, and every
notice (受理结果 to the unit and the city union, the 结案 result file, 档案返还, a 补发)
arrives at the union simulator over the ``union.notify`` lane, counted there."""

from __future__ import annotations

import asyncio
import base64
import random
from datetime import timedelta
from typing import Any

import httpx
import pytest

from adapters.signing import SignedAuth
from config.settings import load_settings
from contracts.clock import today_beijing
from services.union_clock import add_working_days
from simulators.harness import Stack, fast_policies, running_stack
from simulators.simkit import Fault
from simulators.union import UnionSide, make_case, make_jpeg, make_member, make_standards

pytestmark = pytest.mark.integration

CASEWORKER = {"Authorization": "Bearer dev-caseworker"}
READER = {"Authorization": "Bearer dev-readonly"}


def _stack() -> Any:
    s = load_settings()
    return running_stack(s, overrides=fast_policies(s))


async def _until(check: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def _act(http: httpx.AsyncClient, st: Stack, case_id: str, action: str,
               **kw: str) -> httpx.Response:
    return await http.post(f"{st.hub_url}/admin/union/cases/{case_id}",
                           json={"action": action, "reason": "test", **kw}, headers=CASEWORKER)


async def test_a_case_from_application_to_archive_counted_at_the_union() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        assert st.union_state is not None and st.union_inbox is not None
        union = UnionSide(st.hub_url, st.union_secret)
        today, rng = today_beijing(), random.Random(5)
        members = [make_member(rng, "U0001") for _ in range(2)]
        r = await union.put_standards(http, today.year, make_standards(members))
        assert r.status_code == 200, r.text
        # the union fails the first closure delivery twice: the lane retries it
        st.union_state.faults.append(Fault(kind="http_5xx", count=2, operation="closure"))

        case = make_case("UC" + today.strftime("%Y%m%d") + "01", members[0], year=today.year,
                         complete_on=today)
        r = await union.submit(http, case)
        assert r.status_code == 201, r.text
        body = r.json()["case"]
        case_id, no = body["id"], case["case_no"]
        assert body["status"] == "accepted" and body["decision"] == "受理"
        assert members[0]["id_number"] not in r.text and members[0]["name"] not in r.text
        assert (await union.submit(http, case)).status_code == 200  # the same case again
        box = st.union_inbox
        await _until(lambda: {"acceptance:unit", "acceptance:city_union"} <= set(box.of(no)))

        view = (await http.get(f"{st.hub_url}/admin/union/cases/{case_id}",
                               headers=READER)).json()
        assert view["timers"]["close"]["due"] == str(add_working_days(today, 3))
        r = await _act(http, st, case_id, "close")
        assert r.status_code == 202, r.text
        await _until(lambda: "closure:city_union" in box.of(no))
        parsed = box.of(no)["closure:city_union"]["parsed"]
        assert parsed["conclusion"] == "给付" and parsed["payable"] == "3500.00"

        r = await union.final(http, no, today)
        assert r.status_code == 200, r.text
        assert r.json()["case"]["archive_due"] == str(add_working_days(today, 5))
        r = await _act(http, st, case_id, "archive")
        assert r.status_code == 202, r.text
        await _until(lambda: "archive:city_union" in box.of(no))
        r = await _act(http, st, case_id, "resend", notice="closure")  # 补发
        assert r.status_code == 202, r.text
        await _until(lambda: any(":resend:" in k for k in st.union_state.log.effects))  # type: ignore[union-attr]

        log = st.union_state.log
        assert {k.rsplit(":resend:", 1)[0] for k in log.effects} == {
            f"acceptance:unit:{no}", f"acceptance:city_union:{no}",
            f"closure:city_union:{no}", f"archive:city_union:{no}"}
        assert log.summary()["duplicates"] == {}
        view = (await http.get(f"{st.hub_url}/admin/union/cases/{case_id}",
                               headers=READER)).json()
        assert view["status"] == "archived"
        assert {k: t["status"] for k, t in view["timers"].items()} == {
            "accept": "met", "close": "met", "archive": "met"}


async def test_bad_inputs_are_refused_naming_the_field_and_late_work_alerts() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        union = UnionSide(st.hub_url, st.union_secret)
        today, rng = today_beijing(), random.Random(6)
        members = [make_member(rng, "U0002") for _ in range(2)]
        assert (await union.put_standards(http, today.year,
                                          make_standards(members))).status_code == 200
        good = make_case("UCBAD0000001", members[0], year=today.year, complete_on=today)

        bad = {**good, "images": [dict(i) for i in good["images"]]}
        bad["images"][0]["content"] = base64.b64encode(make_jpeg(200)).decode()
        r = await union.submit(http, bad)
        assert r.status_code == 422
        (err,) = r.json()["errors"]
        assert err["field"] == "images.0.content" and "150x150 dpi, found 200x200" in \
            err["reason"]
        r = await union.submit(http, {**good, "applicant": {**good["applicant"],
                                                            "id_number": "320102199001011234"}})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "applicant.id_number"
        assert "320102199001011234" not in r.text
        # unsigned, and signed with another key: 401, nothing stored
        r = await http.post(f"{st.hub_url}/partners/union/cases", json=good)
        assert r.status_code == 401
        r = await http.post(f"{st.hub_url}/partners/union/cases", json=good,
                            auth=SignedAuth("trade_union", "not-the-secret"))
        assert r.status_code == 401
        r = await http.post(f"{st.hub_url}/partners/union/cases", json=good,
                            auth=st.partner_auth("core"))
        assert r.status_code == 403
        listed = (await http.get(f"{st.hub_url}/admin/union/cases", headers=READER)).json()
        assert listed["cases"] == []

        # materials complete a week ago, accepted only now: the acceptance timer is breached
        late = make_case("UCLATE000001", members[1], year=today.year,
                         complete_on=today - timedelta(days=10))
        r = await union.submit(http, late)
        assert r.status_code == 201, r.text
        alerts = (await http.get(f"{st.hub_url}/admin/union/alerts", headers=READER)).json()
        assert [(a["case_no"], a["timer"]) for a in alerts["alerts"]] == [
            ("UCLATE000001", "accept")]
        assert (await http.get(f"{st.hub_url}/admin/union/cases?due=overdue",
                               headers=READER)).json()["cases"] == []
        r = await http.post(f"{st.hub_url}/admin/union/cases/{r.json()['case']['id']}",
                            json={"action": "close", "reason": "x"}, headers=READER)
        assert r.status_code == 403
