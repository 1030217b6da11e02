"""F6 补发 end to end: real RabbitMQ, Redis, SQLite, and both simulators over sockets.

The hub serves the resend API itself (behind the caseworker role); stops and
enrollments of a person share the ``tax.employee`` lane. Tax's effects are counted at
the simulator, never from the hub's own log.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

import simulators.harness
from adapters.core.translate import enrollment_to_event
from config.settings import load_settings
from contracts.employee import EmployeeEnrollment
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack, wait_until_settled
from simulators.simkit import Fault
from simulators.tax import TaxSimulator
from simulators.tax_rules import NON_UNIQUE_SUFFIX

pytestmark = pytest.mark.integration

TERMINAL = ("delivered", "rejected", "dead")


@dataclass
class Rig:
    st: Stack
    tax: TaxSimulator
    http: httpx.AsyncClient

    async def event(self, p: EmployeeEnrollment, n: int = 0) -> str:
        """Core's H2101 event for ``p``; returns the hub's correlation id."""
        req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), n),
                              input={"data": enrollment_to_event(p)})
        r = await self.http.post(f"{self.st.hub_url}/partners/core/events",
                                 json=req.model_dump(mode="json", exclude_none=True),
                                 auth=self.st.partner_auth("core"))
        assert r.status_code == 200, r.text
        return str(r.json()["output"]["correlation_id"])

    async def resend(self, p: EmployeeEnrollment, action: str = "enroll",
                     **over: Any) -> httpx.Response:
        return await self.http.post(f"{self.st.hub_url}/admin/resend/employee", json={
            "id_number": p.id_number, "unit_credit_code": p.unit_credit_code,
            "action": action, "reason": "税务未收到, 窗口人工补发"} | over)

    async def settled(self, cid: str, timeout: float = 30) -> dict[str, Any]:
        txn: dict[str, Any] | None = None
        for _ in range(int(timeout / 0.1)):
            txn = await self.st.hub.deps.journal.transaction(cid)
            if txn and txn["status"] in TERMINAL:
                return txn
            await asyncio.sleep(0.1)
        raise AssertionError(f"{cid} not settled: {txn}")


@contextlib.asynccontextmanager
async def resend_stack(monkeypatch: pytest.MonkeyPatch, store: CoreStore) -> AsyncIterator[Rig]:
    """A running stack whose hub also consumes tax.employee.stop and serves /admin/resend."""
    sims: list[TaxSimulator] = []
    real_tax_app = simulators.harness.tax_app

    def tax_app(*args: Any, **kwargs: Any) -> Any:
        app = real_tax_app(*args, **kwargs)
        sims.append(app.state.tax)
        return app

    monkeypatch.setattr(simulators.harness, "tax_app", tax_app)
    s = load_settings()
    overrides = fast_policies(s, max_attempts=2, delays_ms=(200, 400)) | {
        "breaker_threshold": 1000}
    # the hub serves the resend API itself, behind the caseworker role
    auth = {"Authorization": "Bearer dev-caseworker"}
    async with running_stack(s, store=store, overrides=overrides) as st, \
            httpx.AsyncClient(timeout=10, headers=auth) as http:
        yield Rig(st, sims[0], http)


def _store(n: int) -> CoreStore:
    return CoreStore.seed(1, n, rng_seed=random.randrange(10**9))


def _store_of_unique_flexible_workers(n: int) -> CoreStore:
    """A random store whose ``n`` flexible workers are ``n`` people, none of them one tax
    holds as not unique. An ID whose four digits before the check character are
    ``NON_UNIQUE_SUFFIX`` (about 1 in 9,300: birth day 7, 17 or 27 and sequence 777) has its
    termination refused (TX402) until the hub confirms the identity: one more effect at
    tax than a test of ordinary workers counts."""
    while True:
        store = CoreStore.seed(1, n, rng_seed=random.randrange(10**9))
        flex = list(store.records["flexible"])
        if len(flex) == n and not any(i[-5:-1] == NON_UNIQUE_SUFFIX for i in flex):
            return store


async def test_a_dead_enrollment_resent_after_recovery_is_delivered_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(2)
    p = next(iter(store.persons.values()))
    async with resend_stack(monkeypatch, store) as rig:
        rig.st.tax_state.faults[:] = [Fault(kind="http_5xx", match=p.id_number,
                                            operation="EmployeeEnroll")]
        original = await rig.event(p)
        assert (await rig.settled(original))["status"] == "dead"
        assert store.sync_status[p.business_key]["status"] == "failed"  # core was told
        assert not rig.st.tax_state.log.effects

        rig.st.tax_state.faults.clear()  # tax recovers; the caseworker resends
        r = await rig.resend(p)
        assert r.status_code == 202, r.text
        out = r.json()
        assert out["correlation_id"] != original
        txn = await rig.settled(out["correlation_id"])
        assert (txn["status"], txn["source"], txn["type"]) == (
            "delivered", "resend", "tax.employee.enroll")
        key = f"EmployeeEnroll:{p.business_key}"
        assert dict(rig.st.tax_state.log.effects) == {key: 1}
        assert rig.st.tax_state.log.order[p.id_number] == [out["serial"]]
        synced = store.sync_status[p.business_key]
        assert (synced["status"], synced["correlation_id"]) == ("synced", out["correlation_id"])
        # the failed original stays what it was: the resend is its own transaction
        assert (await rig.st.hub.deps.journal.transaction(original))["status"] == "dead"
        hops = [e["hop"] for e in await rig.st.hub.deps.journal.log_for(out["correlation_id"])]
        assert hops[:2] == ["admin.resend", "tax.employee"] and "core.sync" in hops


async def test_the_same_resend_twice_reaches_tax_twice_on_purpose(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two resend ids are two intended requests: two keys, two serials, two calls to tax.

    Idempotency does not merge them (the key is salted with the resend id) and tax
    replays nothing (it deduplicates on ywlsh, and the serials differ). What tax then
    does is its own business rule: the simulator has no "already enrolled" rule, so
    it records the enrollment twice, and both transactions end delivered.
    """
    store = _store(2)
    p = next(iter(store.persons.values()))
    async with resend_stack(monkeypatch, store) as rig:
        first, second = (await rig.resend(p)).json(), (await rig.resend(p)).json()
        assert first["resend_id"] != second["resend_id"]
        assert first["correlation_id"] != second["correlation_id"]
        assert first["serial"] != second["serial"]
        for out in (first, second):
            assert (await rig.settled(out["correlation_id"]))["status"] == "delivered"
        tax = rig.st.tax_state.log
        key = f"EmployeeEnroll:{p.business_key}"
        assert tax.effects[key] == 2 and tax.replays == 0
        assert sorted(tax.order[p.id_number]) == sorted([first["serial"], second["serial"]])


async def test_a_stop_resend_reaches_tax_with_the_chosen_date(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(2)
    p = next(iter(store.persons.values()))
    chosen = date.today() - timedelta(days=3)
    async with resend_stack(monkeypatch, store) as rig:
        r = await rig.resend(p, "stop", stop_date=chosen.isoformat(), stop_reason="02")
        assert r.status_code == 202, r.text
        out = r.json()
        txn = await rig.settled(out["correlation_id"])
        assert (txn["status"], txn["type"]) == ("delivered", "tax.employee.stop")
        assert rig.tax.stops[out["serial"]] == {
            "shxydm": p.unit_credit_code, "zjhm": p.id_number, "xm": p.name,
            "tbrq": chosen.isoformat(), "tbyy": "02"}
        assert dict(rig.st.tax_state.log.effects) == {f"EmployeeStop:{p.business_key}": 1}
        synced = store.sync_status[p.business_key]
        assert (synced["biz_type"], synced["status"]) == ("tax.employee.stop", "synced")
        hops = [e["hop"] for e in await rig.st.hub.deps.journal.log_for(out["correlation_id"])]
        assert hops[:2] == ["admin.resend", "tax.employee"] and "core.sync" in hops


async def test_bulk_resend_of_dead_transactions_shows_progress_to_completion(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(3)
    people = list(store.persons.values())
    async with resend_stack(monkeypatch, store) as rig:
        rig.st.tax_state.faults[:] = [Fault(kind="http_5xx", operation="EmployeeEnroll")]
        for i, p in enumerate(people):
            await rig.event(p, i)
        assert await wait_until_settled(rig.st, 3, timeout=30) == {"dead": 3}
        rig.st.tax_state.faults.clear()
        gone = people[2]
        del store.persons[gone.business_key]  # core no longer has this one

        r = await rig.http.post(f"{rig.st.hub_url}/admin/resend/employee/bulk", json={
            "filter": {"status": "dead", "type": "tax.employee.enroll"}, "action": "enroll",
            "reason": "税务故障恢复后批量补发", "rate_per_s": 5})
        assert r.status_code == 202, r.text
        job_id, total = r.json()["job_id"], r.json()["total"]
        assert total == 3
        views: list[dict[str, Any]] = []
        for _ in range(200):
            views.append((await rig.http.get(
                f"{rig.st.hub_url}/admin/resend/jobs/{job_id}")).json())
            if views[-1]["state"] != "running":
                break
            await asyncio.sleep(0.05)
        final = views[-1]
        assert (final["state"], final["total"], final["done"], final["failed"],
                final["pending"]) == ("finished", 3, 2, 1, 0)
        assert final["failures"][0]["code"] == "NOT_IN_CORE"
        progress = [v["done"] + v["failed"] for v in views]
        assert progress == sorted(progress) and any(v["pending"] > 0 for v in views)
        for cid in final["correlation_ids"]:
            assert (await rig.settled(cid))["status"] == "delivered"
        effects = rig.st.tax_state.log.effects
        assert dict(effects) == {f"EmployeeEnroll:{p.business_key}": 1 for p in people[:2]}


async def test_units_flexible_workers_and_residents_are_resent_from_core(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """单位/灵活/居民信息税务补发: enrollment, change and stop, from core's current record."""
    store = _store(2)
    uscc = next(iter(store.units))
    flex_id = next(iter(store.records["flexible"]))
    resident_id = next(iter(store.records["resident"]))
    async with resend_stack(monkeypatch, store) as rig:
        async def resend(subject: str, key: str, action: str, **over: Any) -> dict[str, Any]:
            r = await rig.http.post(f"{rig.st.hub_url}/admin/resend/record", json={
                "subject": subject, "key": key, "action": action,
                "reason": "核心有记录, 税务缺失, 人工补发"} | over)
            assert r.status_code == 202, r.text
            out: dict[str, Any] = r.json()
            return await rig.settled(out["correlation_id"]) | {"sent": out}

        plan = [("unit", uscc, "enroll", {}), ("unit", uscc, "update", {}),
                ("unit", uscc, "stop", {"stop_date": "2026-12-31"}),
                ("flexible", flex_id, "enroll", {}), ("flexible", flex_id, "update", {}),
                ("flexible", flex_id, "stop", {"stop_date": "2026-12-31"}),
                ("resident", resident_id, "enroll", {}), ("resident", resident_id, "update", {}),
                ("resident", resident_id, "stop", {"stop_date": "2026-12-31"})]
        for subject, key, action, over in plan:
            txn = await resend(subject, key, action, **over)
            assert (txn["status"], txn["source"]) == ("delivered", "resend"), (subject, action,
                                                                               txn)
        effects = rig.st.tax_state.log.effects
        assert sum(effects.values()) == len(plan) and rig.st.tax_state.log.replays == 0
        assert effects[f"UnitEnroll:{uscc}"] == 1 and effects[f"ResidentSuspend:{resident_id}"] == 1
        assert store.sync_status[resident_id]["status"] == "synced"

        # a record core does not have is refused with the reason, nothing published
        r = await rig.http.post(f"{rig.st.hub_url}/admin/resend/record", json={
            "subject": "resident", "key": "110101199003071234"[:-1] + "X", "action": "enroll",
            "reason": "核对"})
        assert r.status_code == 422 and "key" in r.text

        # bulk: every resident whose latest resend was delivered since a date, at a rate
        r = await rig.http.post(f"{rig.st.hub_url}/admin/resend/employee/bulk", json={
            "subject": "resident", "filter": {"status": "delivered"}, "action": "update",
            "reason": "批量补发居民变更", "rate_per_s": 20})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        for _ in range(100):
            job = (await rig.http.get(f"{rig.st.hub_url}/admin/resend/jobs/{job_id}")).json()
            if job["state"] != "running":
                break
            await asyncio.sleep(0.1)
        assert (job["state"], job["total"], job["done"], job["failed"]) == (
            "finished", 1, 1, 0)


async def test_a_units_all_resend_sends_basic_enrollment_and_stop_and_core_hears_each(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """单位信息税务补发 (seed 1852): basic, 参保 and (for a unit core holds as stopped) 停保
    information, in that order, and core's record of the unit's status at tax updated."""
    store = CoreStore.seed(2, 2, rng_seed=random.randrange(10**9))
    running, stopped = list(store.units)[:2]
    store.records["unit"][stopped]["pay_status"] = "2"
    async with resend_stack(monkeypatch, store) as rig:
        answers = []
        for uscc in (running, stopped):
            r = await rig.http.post(f"{rig.st.hub_url}/admin/resend/record", json={
                "subject": "unit", "key": uscc, "action": "all", "reason": "单位信息整体补发"})
            assert r.status_code == 202, r.text
            answers.append(r.json())
            for step in r.json()["steps"]:
                txn = await rig.settled(step["correlation_id"])
                assert txn["status"] == "delivered", txn
        assert [s["type"] for s in answers[0]["steps"]] == [
            "tax.unit.enroll", "tax.unit.update"]
        assert [s["type"] for s in answers[1]["steps"]] == [
            "tax.unit.enroll", "tax.unit.update", "tax.unit.pay_status_change"]
        effects = rig.st.tax_state.log.effects
        order = [k.split(":")[0] for k in effects if k.endswith(stopped)]
        assert order == ["UnitEnroll", "UnitUpdate", "UnitPayStatusChange"], order
        assert sum(effects.values()) == 5 and not rig.st.tax_state.log.summary()["duplicates"]
        for uscc in (running, stopped):  # core's record of the unit at tax, per result
            assert store.sync_status[uscc]["status"] == "synced", store.sync_status.get(uscc)
        # all is for units only, named in the refusal
        flex = next(iter(store.records["flexible"]))
        r = await rig.http.post(f"{rig.st.hub_url}/admin/resend/record", json={
            "subject": "flexible", "key": flex, "action": "all", "reason": "整体补发"})
        assert r.status_code == 422 and "action all is for units" in r.text


async def test_flexible_workers_core_and_tax_disagree_about_are_found_and_resent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """灵活信息税务补发 (seed 1862-1865): normal in core and missing at tax -> enroll; 暂停 in
    core -> suspend; 终止/中止 in core -> terminate; detected, reported masked, resent."""
    store = _store_of_unique_flexible_workers(6)
    flex = list(store.records["flexible"])
    missing, suspended, terminated, halted, agreeing, odd = flex
    for who, status in ((suspended, "2"), (terminated, "3"), (halted, "4")):
        store.records["flexible"][who]["status"] = status
    async with resend_stack(monkeypatch, store) as rig:
        book = rig.tax.book
        for who in (suspended, terminated, halted, agreeing, odd):  # known to tax, active
            r = store.records["flexible"][who]
            book.persons[("flexible", who)] = {"status": "active", "jcybqh": r["community"],
                                               "xm": r["name"], "cbnd": ""}
        book.persons[("flexible", odd)]["status"] = "suspended"  # tax ahead of core
        url = f"{rig.st.hub_url}/admin/resend/flexible/detect"
        report = (await rig.http.post(url, json={"reason": "灵活补发核对"})).json()
        assert report["checked"] == 6 and report["resent"] == []
        actions = {g["action"] for g in report["gaps"]}
        assert len(report["gaps"]) == 5 and actions == {"enroll", "stop", "terminate", None}
        assert all(g["id_number"] not in flex for g in report["gaps"])  # masked
        assert rig.st.tax_state.log.summary()["effects"] == 0  # a report changes nothing
        done = (await rig.http.post(url, json={"reason": "灵活补发", "apply": True})).json()
        assert len(done["resent"]) == 4 and done["failed"] == [], done
        for r in done["resent"]:
            assert (await rig.settled(r["correlation_id"]))["status"] == "delivered"
        effects = rig.st.tax_state.log.effects
        assert effects[f"FlexibleEnroll:{missing}"] == 1
        assert effects[f"FlexibleSuspend:{suspended}"] == 1
        assert effects[f"FlexibleTerminate:{terminated}"] == 1
        assert effects[f"FlexibleTerminate:{halted}"] == 1
        assert sum(effects.values()) == 4
        again = (await rig.http.post(url, json={"reason": "复核"})).json()
        assert [g["action"] for g in again["gaps"]] == [None]  # only the caseworker's case
