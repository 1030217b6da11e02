"""F9 转移接续 end to end on real servers: the national platform pulled (with a page that repeats
an application, and a platform re-serving what the hub has), a window entry to a 未联网地区
(参保凭证 PDF), 我的南京's transfer_out blocked by arrears; every side effect counted at the
simulators (platform, core, 我的南京)."""

from __future__ import annotations

import asyncio
import random
from datetime import date
from typing import Any

import httpx
import pytest

from config.settings import load_settings
from contracts.ids import make_id_number
from simulators.channels import submit
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from simulators.simkit import Fault
from simulators.transfer import TransferSims, make_application
from tools.demo_flows import wait_for
from tools.demo_transfer import CASEWORKER, transfer_round

pytestmark = pytest.mark.integration


def _stack() -> Any:
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    # the hub's ticker pulls once at start, then hourly: the tests pull on demand
    return running_stack(s, store=store, overrides=fast_policies(s, max_attempts=3) | {
        "transfer": s.transfer.model_copy(update={"pull_s": 3600.0})})


async def _started(sims: TransferSims) -> None:
    """The ticker's first (scheduled) pull is done: the feed was empty then."""
    assert await wait_for(lambda: sims.book.pulls >= 1, 10), "the scheduled pull never ran"


def _person(st: Any, rng: random.Random, arrears: int = 0) -> str:
    who = make_id_number(rng, born=date(1986, 2, 3), area="320104")
    st.tax_sim.book.arrears[who] = arrears
    return who


async def test_one_flow_for_the_platform_the_window_and_my_nanjing() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        sims: TransferSims = st.sims["transfer"]
        await _started(sims)
        rng = random.Random(12)
        ready, owes, comes, bad = (f"ZY2026112000{i}" for i in range(1, 5))
        items = [make_application(rng, ready, id_number=_person(st, rng)),
                 make_application(rng, owes, id_number=_person(st, rng, 88_800)),
                 make_application(rng, comes, direction="in", id_number=_person(st, rng)),
                 make_application(rng, bad, id_number=_person(st, rng))]
        items[3]["certno"] = items[3]["certno"][:17] + (
            "0" if items[3]["certno"][17] != "0" else "1")  # a bad check character
        sims.book.add(*items)
        sims.state.faults[:] = [Fault(kind="duplicate", operation="T2401", count=1)]

        # -- the platform: one pull (its page repeats the first application)
        r = await http.post(f"{st.hub_url}/admin/transfers/pull", headers=CASEWORKER)
        assert r.status_code == 200, r.text
        got = r.json()
        assert (got["items"], got["new"], got["duplicates"], got["refused"]) == (5, 3, 1, 1)
        assert got["refusals"][0]["refused"][0]["field"] == "id_number"
        book = sims.book
        assert await wait_for(lambda: all(book.status_of(n) for n in (ready, owes, comes, bad)),
                              30), book.statuses
        assert [book.status_of(n) for n in (ready, owes, comes, bad)] == ["11", "12", "21", "91"]
        failed = book.statuses[owes][-1]
        assert failed["fail_fld"] == "id_number" and "888.00" in failed["fail_rea"]
        assert "check character" in book.statuses[bad][-1]["fail_rea"]

        # -- seen twice: the platform serves the whole feed again; nothing is processed again
        book.replay_from = 0
        r = await http.post(f"{st.hub_url}/admin/transfers/pull", headers=CASEWORKER)
        assert (r.json()["new"], r.json()["duplicates"]) == (0, 3), r.json()
        r = await http.get(f"{st.hub_url}/admin/transfers/{ready}", headers=CASEWORKER)
        assert r.status_code == 200 and r.json()["status"] == "out_approved"
        assert "*" in r.json()["id_number"]  # masked

        # -- the window: a 转出 to a 未联网地区 (542521 阿里地区): offline, a 参保凭证 PDF
        window = {"application_no": "CK20261120A1", "id_number": _person(st, rng),
                  "name": "孙立新", "source_division": "320102", "target_division": "542521",
                  "apply_date": "2026-11-20", "unit_credit_code": "",
                  "periods": [{"begin_month": "201801", "end_month": "202610"}]}
        r = await http.post(f"{st.hub_url}/admin/transfers", json=window, headers=CASEWORKER)
        assert r.status_code == 202 and r.json()["offline"] is True, r.text
        again = await http.post(f"{st.hub_url}/admin/transfers", json=window,
                                headers=CASEWORKER)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert await wait_for(lambda: "CK20261120A1" in st.store.transfers, 20)
        pdf = await http.get(f"{st.hub_url}/admin/transfers/CK20261120A1/certificate",
                             headers=CASEWORKER)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-type"] == "application/pdf" and b"STSong-Light" in pdf.content
        view = (await http.get(f"{st.hub_url}/admin/transfers/CK20261120A1",
                               headers=CASEWORKER)).json()
        assert view["status"] == "offline_issued" and view["certificate"]["size"] == len(
            pdf.content)
        assert book.status_of("CK20261120A1") is None  # not on the platform: offline

        # -- bad input: field and reason, nothing stored
        good = str(window["id_number"])
        bad_id = good[:17] + ("0" if good[17] != "0" else "1")  # a wrong check character
        for change, field in (({"id_number": bad_id}, "id_number"),
                              ({"target_division": "999999"}, "target_division"),
                              ({"target_division": "320105"}, "target_division")):
            r = await http.post(f"{st.hub_url}/admin/transfers", headers=CASEWORKER,
                                json=window | {"application_no": "CK20261120B1"} | change)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
        r = await http.get(f"{st.hub_url}/admin/transfers/CK20261120B1", headers=CASEWORKER)
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "application_no"
        r = await http.get(f"{st.hub_url}/admin/transfers/a!", headers=CASEWORKER)
        assert r.status_code == 422
        r = await http.get(f"{st.hub_url}/admin/transfers/{ready}/certificate",
                           headers=CASEWORKER)
        assert r.status_code == 404  # online: no 参保凭证
        assert (await http.post(f"{st.hub_url}/admin/transfers", json=window)).status_code == 401

        # -- 我的南京: a transfer_out blocked by arrears, the reason reaching the app
        cfg = st.settings.channels["my_nanjing"]
        payload = {"unit_credit_code": "91320106R8JM88BRJM", "name": "孙立新",
                   "id_number": _person(st, rng, 123_456), "phone": "13851700005",
                   "target_division": "310104", "stop_date": "2026-11-30"}
        r = await submit(http, st.hub_url, "my_nanjing", cfg, "transfer_out", "F9-ARR-1",
                         payload)
        assert r.status_code == 202, r.text
        app_id = r.json()["application_id"]
        assert await wait_for(lambda: app_id in st.inbox.results, 20)
        told = st.inbox.results[app_id]
        assert told["status"] == "rejected" and "1234.56" in told["reason"]
        assert told["reason_field"] == "payload.id_number"
        r = await http.get(f"{st.hub_url}/admin/transfers/MN{app_id}", headers=CASEWORKER)
        assert r.json()["status"] == "out_failed" and r.json()["source"] == "my_nanjing"

        # -- counted at the simulators: one status per application at the platform and core
        platform = sims.state.log.summary()
        assert platform["duplicates"] == {} and platform["effects"] == 4
        assert await wait_for(lambda: len(st.store.transfers) == 5, 10), st.store.transfers
        core = st.core_state.log.since({}, "H4201:")
        assert set(core.values()) == {1} and len(core) == 5  # 3 platform + window + 我的南京
        assert st.channel_state.log.summary()["effects"] == 1
        assert book.bad_signatures == 0

        # -- 补发 (issue 12): the current status again is one new effect at the platform and
        # at core; the caller's retry (same resend_id) adds none
        p_before, c_before = sims.state.log.snapshot(), st.core_state.log.snapshot()
        body = {"reason": "平台未收到", "resend_id": "resend-zy-0001"}
        for _ in range(2):
            r = await http.post(f"{st.hub_url}/admin/transfers/{ready}/resend", json=body,
                                headers=CASEWORKER)
            assert r.status_code == 200 and r.json()["sent"] == ["platform", "core"], r.text
        assert await wait_for(lambda: bool(sims.state.log.since(p_before, "status:"))
                              and bool(st.core_state.log.since(c_before, "H4201:")), 20)
        r = await http.post(f"{st.hub_url}/admin/transfers/CK20261120A1/resend",
                            json={"reason": "r", "targets": ["platform"]}, headers=CASEWORKER)
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "targets", r.text
        r = await http.post(f"{st.hub_url}/admin/transfers/CK20261120B1/resend",
                            json={"reason": "r"}, headers=CASEWORKER)
        assert r.status_code == 404
        await asyncio.sleep(0.5)
        assert sims.state.log.since(p_before, "status:") == {f"status:{ready}:11": 1}
        assert st.core_state.log.since(c_before, "H4201:") == {f"H4201:{ready}:11": 1}
        assert book.statuses[ready][-1]["stas"] == "11"


async def test_the_demo_round_adds_up() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=15) as http:
        await _started(st.sims["transfer"])
        lines, flow = await transfer_round(st, http, n=8)
        assert flow.sent == 8 + 2 + 2, lines
        assert flow.balanced and flow.duplicates == 0 and flow.dead == 0, (flow, lines)
        assert flow.rejected >= 4  # arrears x2 + bad ID at the platform, bad window entry...
        assert "refused by the platform: BUSY" in lines[0], lines
