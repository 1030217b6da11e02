"""F8 高额费用预警 end to end on real servers: core's figures (H1107) through the hub's
lanes to the departments' simulator, counted there (seed 1537-1567)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from config.settings import load_settings
from contracts.warnings import DEPARTMENTS, SelfPaid
from jobs.warnings import compute
from retry.policy import RetryPolicy
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack
from simulators.simkit import Fault
from simulators.warnings_recv import sample_people
from tools.demo_warnings import run_month, wait_acknowledged, warnings_round

pytestmark = pytest.mark.integration

MONTH = "202605"
YEAR = 2026
CASEWORKER = {"Authorization": "Bearer dev-caseworker"}
READONLY = {"Authorization": "Bearer dev-readonly"}


def _stack() -> Any:
    s = load_settings()
    fast = RetryPolicy(max_attempts=8, max_age_s=3600, inprocess_attempts=1,
                       delays_ms=(300, 600, 1200, 2400))
    warn = s.warnings.model_copy(update={"policy": fast, "departments": {
        n: d.model_copy(update={"timeout_s": 1.0}) for n, d in s.warnings.departments.items()}})
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    return running_stack(s, store=store, overrides=fast_policies(s) | {"warnings": warn})


def _people(st: Stack) -> list[SelfPaid]:
    lines = st.settings.warnings.lines(YEAR)
    assert lines is not None
    people = sample_people(YEAR, lines, seed=random.randrange(1000))
    st.store.self_paid[YEAR] = people
    return people


def _by_name(people: list[SelfPaid]) -> dict[str, str]:
    return {p.name: p.id_number for p in people}


async def test_right_people_reach_right_departments_and_a_second_run_sends_nothing() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        people = _people(st)
        ids = _by_name(people)
        first = await run_month(st, http, MONTH)
        assert first["published"] == first["warnings"] > 0
        status = await wait_acknowledged(st, http, MONTH)
        assert status["acknowledged"] == status["total"] == first["warnings"], status
        assert st.warn_inbox is not None and st.warn_state is not None
        # who got whom, read at the departments
        expect = {
            "civil_affairs": {"城镇致贫职工", "农村致贫居民", "城镇致贫军人", "城镇致贫困难职工",
                              "农村低收入返贫", "原建档立卡退保", "农村低保原建档立卡"},
            "agriculture": {"农村致贫居民", "农村低收入返贫", "原建档立卡退保",
                            "农村低保原建档立卡"},
            "veterans": {"城镇致贫军人"},
            "union": {"城镇致贫职工", "城镇致贫困难职工"},
        }
        for dept in DEPARTMENTS:
            assert st.warn_inbox.ids(dept) == {ids[n] for n in expect[dept]}, dept
        # the relapse kind reaches 农业农村 with its reading
        agri = {r["person"]["psn_name"]: r for r in st.warn_inbox.of("agriculture").values()}
        assert agri["原建档立卡退保"]["warning_types"] == ["因病返贫"]
        assert agri["原建档立卡退保"]["person"]["insutype"] == ""
        # the hub's lists equal the pure rules' (nobody extra, nobody lost)
        lines = st.settings.warnings.lines(YEAR)
        assert lines is not None
        assert sum(len(v) for v in st.warn_inbox.received.values()) == len(
            compute(MONTH, people, lines, DEPARTMENTS))
        summary = st.warn_state.log.summary()
        assert summary["duplicates"] == {} and summary["replays"] == 0
        # the second run of the month: nothing reaches any department
        calls, effects = st.warn_state.log.calls, st.warn_state.log.snapshot()
        second = await run_month(st, http, MONTH)
        assert second["published"] == 0 and second["new"] == 0
        await asyncio.sleep(1.0)
        assert st.warn_state.log.calls == calls
        assert st.warn_state.log.since(effects) == {}
        # the answers are masked, and only the allowed roles run
        r = await http.get(f"{st.hub_url}/admin/warnings/runs/{MONTH}?detail=true",
                           headers=READONLY)
        assert r.status_code == 200
        assert not any(i in r.text for i in ids.values())
        assert (await http.post(f"{st.hub_url}/admin/warnings/runs",
                                json={"month": MONTH}, headers=READONLY)).status_code == 403
        assert (await http.post(f"{st.hub_url}/admin/warnings/runs",
                                json={"month": MONTH})).status_code == 401


async def test_a_department_down_then_back_gets_its_list_once() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        _people(st)
        assert st.warn_state is not None and st.warn_inbox is not None
        # 农业农村 is down for its first calls; 民政 takes one record, then hangs (the hub
        # gives up and sends again: the department replays its acknowledgement)
        st.warn_state.faults[:] = [Fault(kind="http_5xx", operation="agriculture", count=6),
                                   Fault(kind="timeout", operation="civil_affairs", count=1,
                                         delay_s=2.0)]
        first = await run_month(st, http, MONTH)
        status = await wait_acknowledged(st, http, MONTH, timeout=45)
        assert status["acknowledged"] == status["total"] == first["warnings"], status
        agri = st.warn_state.log.since({}, "agriculture:")
        assert len(agri) == 4 and set(agri.values()) == {1}, agri
        civil = st.warn_state.log.since({}, "civil_affairs:")
        assert len(civil) == 7 and set(civil.values()) == {1}, civil
        assert st.warn_state.log.replays >= 1  # the timed-out record came again: replayed
        assert all(f.count == 0 for f in st.warn_state.faults)


async def test_a_caseworker_resends_one_departments_list() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        _people(st)
        assert st.warn_state is not None
        await run_month(st, http, MONTH)
        await wait_acknowledged(st, http, MONTH)
        replays, effects = st.warn_state.log.replays, st.warn_state.log.snapshot()
        url = f"{st.hub_url}/admin/warnings/runs/{MONTH}/resend"
        assert (await http.post(url, json={"department": "veterans"},
                                headers=READONLY)).status_code == 403
        r = await http.post(url, json={"department": "veterans"}, headers=CASEWORKER)
        assert r.status_code == 202 and r.json()["resent"] == 1, r.text
        for _ in range(100):
            if st.warn_state.log.replays > replays:
                break
            await asyncio.sleep(0.05)
        # the department got it again under the same serial: a replay, no second effect
        assert st.warn_state.log.replays == replays + 1
        assert st.warn_state.log.since(effects) == {}


async def test_the_demo_round_shows_the_second_run_sending_nothing() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        lines, flow = await warnings_round(st, http)
        assert flow.sent > 0 and flow.delivered == flow.sent and flow.duplicates == 0
        assert flow.balanced
        assert "published=0 new effects=0 calls since=0" in lines[1], lines
