"""Bulk 补发 claims on real Redis, and two bulk jobs of two "hubs" against the real stack.

The store: two clients (two processes) claiming the same records at once share them
out, renewals and releases touch only the owner's claims, an unrenewed claim expires.

End to end: dead enrollments, then the same bulk request started at once by the hub
(over HTTP: its claims are Redis's, ``bootstrap.wiring``) and by a second hub's job
service in this process (its own Redis connection, the same namespace): tax, counted
at the simulator, enrolls each person exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from config.settings import load_settings
from services.audit import Caller
from services.resend_claims import RedisResendClaims, claim_key
from services.resend_jobs import BulkResendRequest, ResendJobs
from services.resender import Resender
from simulators.harness import wait_until_settled
from simulators.simkit import Fault
from tests.integration.routes.test_resend import _store, resend_stack

pytestmark = pytest.mark.integration

BULK: dict[str, Any] = {"filter": {"status": "dead", "type": "tax.employee.enroll"},
                        "action": "enroll", "reason": "税务故障恢复后批量补发", "rate_per_s": 20}


@pytest.fixture
async def two_clients() -> AsyncIterator[tuple[Redis, Redis, str]]:
    url = load_settings().redis_url
    a, b = Redis.from_url(url), Redis.from_url(url)
    prefix = f"t{uuid.uuid4().hex[:8]}:resend:claim:"
    try:
        yield a, b, prefix
    finally:
        keys = [k async for k in a.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await a.delete(*keys)
        await a.aclose()
        await b.aclose()


async def test_two_processes_claiming_the_same_records_at_once_share_them_out(
        two_clients: tuple[Redis, Redis, str]) -> None:
    a, b, prefix = two_clients
    one, two = RedisResendClaims(a, prefix), RedisResendClaims(b, prefix)
    keys = [claim_key("employee", f"U:{i:018d}") for i in range(1200)]  # > one batch
    lost_one, lost_two = await asyncio.gather(one.claim(keys, "j1", 30),
                                              two.claim(list(reversed(keys)), "j2", 30))
    assert set(lost_one) | set(lost_two) == set(keys)
    assert not set(lost_one) & set(lost_two)  # every record held by exactly one job
    assert set(lost_one.values()) <= {"j2"} and set(lost_two.values()) <= {"j1"}
    held_by_one = [k for k in keys if k not in lost_one]
    assert await one.claim(held_by_one, "j1", 30) == {}  # claiming again is fine
    await two.release(keys, "j2")  # frees j2's only
    assert await two.claim(held_by_one, "j3", 30) == dict.fromkeys(held_by_one, "j1")
    await one.release(keys, "j1")
    assert await two.claim(keys, "j3", 30) == {}


async def test_an_unrenewed_claim_expires_and_a_renewed_one_lives(
        two_clients: tuple[Redis, Redis, str]) -> None:
    a, b, prefix = two_clients
    one, two = RedisResendClaims(a, prefix), RedisResendClaims(b, prefix)
    await one.claim(["kept", "left"], "j1", 0.4)
    for _ in range(4):
        await asyncio.sleep(0.2)
        await one.renew(["kept"], "j1", 0.4)
        await two.renew(["left"], "j2", 5)  # not j2's: does not extend it
    assert await two.claim(["kept", "left"], "j2", 5) == {"kept": "j1"}
    assert (await a.get(f"{prefix}left")) == b"j2"


async def test_the_same_bulk_resend_by_two_hubs_at_once_enrolls_each_person_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    n = 6
    store = _store(n)
    people = list(store.persons.values())
    async with resend_stack(monkeypatch, store) as rig:
        rig.st.tax_state.faults[:] = [Fault(kind="http_5xx", operation="EmployeeEnroll")]
        for i, p in enumerate(people):
            await rig.event(p, i)
        assert await wait_until_settled(rig.st, n, timeout=30) == {"dead": n}
        rig.st.tax_state.faults.clear()

        deps = rig.st.hub.deps
        assert isinstance(deps.resend_claims, RedisResendClaims)  # what bootstrap wires
        other_redis = Redis.from_url(deps.settings.redis_url)
        other = ResendJobs(RedisResendClaims(
            other_redis, prefix=f"{deps.settings.namespace}:resend:claim:"))
        resender = Resender(core=deps.core, publisher=deps.publisher, journal=deps.journal)
        try:
            http, theirs = await asyncio.gather(
                rig.http.post(f"{rig.st.hub_url}/admin/resend/employee/bulk", json=BULK),
                other.start(BulkResendRequest.model_validate(BULK),
                            Caller("wang.wu", "caseworker"), resender=resender,
                            engine=deps.journal.engine))
            assert http.status_code == 202, http.text
            ours = http.json()
            assert ours["total"] + theirs.total == n
            assert ours["in_other_job"] == theirs.total
            assert theirs.in_other_job == ours["total"]
            views: dict[str, Any] = {}
            for _ in range(300):
                views = (await rig.http.get(
                    f"{rig.st.hub_url}/admin/resend/jobs/{ours['job_id']}")).json()
                theirs = await other.get(theirs.job_id) or theirs  # the other process's job
                if views["state"] != "running" and theirs.state != "running":
                    break
                await asyncio.sleep(0.05)
            assert (views["state"], theirs.state) == ("finished", "finished")
            assert views["done"] + theirs.done == n
            for cid in [*views["correlation_ids"], *theirs.correlation_ids]:
                assert (await rig.settled(cid))["status"] == "delivered"
            left = [k async for k in other_redis.scan_iter(
                match=f"{deps.settings.namespace}:resend:claim:*", count=1000)]
            assert left == []  # both jobs released their claims
        finally:
            await other.aclose()
            await other_redis.aclose()
        effects = rig.st.tax_state.log.effects
        assert dict(effects) == {f"EmployeeEnroll:{p.business_key}": 1 for p in people}
