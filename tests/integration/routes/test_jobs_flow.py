"""Durable jobs end to end (issue 15 item 8): real RabbitMQ, Redis, SQLite and simulators.

A bulk 补发 is started on one hub, which is stopped mid-job; a new hub over the same
database (and the same queues) resumes the job from its checkpoint to done, and tax's
simulator counts each record enrolled exactly once across both. On that second hub a
``dlq.retry`` job drains a dead-letter group, counted delivered at tax's simulator.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
import pytest

from adapters.core.translate import enrollment_to_event
from config.settings import load_settings
from contracts.employee import EmployeeEnrollment
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack, wait_until_settled
from simulators.simkit import Fault
from storage.deadletters import DeadLetterFilter, DeadLetterStore

pytestmark = pytest.mark.integration

CASEWORKER = {"Authorization": "Bearer dev-caseworker"}
OPS = {"Authorization": "Bearer dev-ops"}


async def _event(st: Stack, http: httpx.AsyncClient, p: EmployeeEnrollment, n: int) -> None:
    req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), n),
                          input={"data": enrollment_to_event(p)})
    r = await http.post(f"{st.hub_url}/partners/core/events",
                        json=req.model_dump(mode="json", exclude_none=True),
                        auth=st.partner_auth("core"))
    assert r.status_code == 200, r.text


async def _job(st: Stack, http: httpx.AsyncClient, job_id: str, *, until: str = "finished",
               at_least: int = 0, timeout: float = 30) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for _ in range(int(timeout / 0.05)):
        got = (await http.get(f"{st.hub_url}/admin/jobs/{job_id}", headers=OPS)).json()
        if (until == "finished" and got["finished"]) or \
                (until == "done" and got["done"] >= at_least):
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id}: {got}")


async def _dead_letters(store: DeadLetterStore, flt: DeadLetterFilter, n: int) -> None:
    for _ in range(300):
        if await store.count(flt) >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {n} dead letters")


def _enrolled(*stacks: Stack) -> dict[str, int]:
    out: dict[str, int] = {}
    for st in stacks:
        for key, n in st.tax_state.log.effects.items():
            out[key] = out.get(key, 0) + n
    return out


async def test_a_bulk_resend_survives_a_hub_restart_and_a_retry_job_drains_a_group() -> None:
    store = CoreStore.seed(1, 9, rng_seed=random.randrange(10**9))
    people = list(store.persons.values())
    resent, retried = people[:6], people[6:]
    ns = f"t{uuid.uuid4().hex[:10]}"
    s = load_settings()
    overrides = fast_policies(s, max_attempts=2, delays_ms=(100, 200)) | {
        "breaker_threshold": 1000}
    async with httpx.AsyncClient(timeout=10) as http:
        # -- the first hub: enrollments die at tax, a bulk resend starts, the hub stops
        async with running_stack(s, store=store, overrides=overrides, namespace=ns,
                                 keep_topology=True) as first:
            first.tax_state.faults[:] = [Fault(kind="http_5xx", operation="EmployeeEnroll")]
            for i, p in enumerate(resent):
                await _event(first, http, p, i)
            assert await wait_until_settled(first, 6, timeout=30) == {"dead": 6}
            first.tax_state.faults.clear()
            r = await http.post(f"{first.hub_url}/admin/resend/employee/bulk", headers=CASEWORKER,
                                json={"filter": {"status": "dead"}, "action": "enroll",
                                      "reason": "税务恢复后批量补发", "rate_per_s": 4})
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            assert r.json()["total"] == 6
            mid = await _job(first, http, job_id, until="done", at_least=2)
            assert not mid["finished"] and mid["kind"] == "resend.bulk"
            # their dead letters were dealt with by the resend: archived
            letters = DeadLetterStore(first.hub.deps.journal.engine)
            await _dead_letters(letters, DeadLetterFilter(status="dead"), 6)
            (group,) = await letters.groups()
            archived = await http.post(f"{first.hub_url}/admin/dead-letters/archive",
                                       headers=OPS, json={"reason": "resent in bulk", "group": {
                                           "reason_code": group.reason_code}})
            assert archived.status_code == 200 and len(archived.json()["done"]) == 6
        db = first.settings.database_url
        # -- a new hub over the same database and queues resumes the job
        async with running_stack(s, store=store, overrides=overrides, namespace=ns,
                                 database_url=db) as second:
            end = await _job(second, http, job_id)
            assert (end["state"], end["total"], end["done"] + end["skipped"], end["failed"]) \
                == ("done", 6, 6, 0)
            row = await second.hub.deps.jobs.store.get(job_id)
            assert row.runs == 2 and row.checkpoint["next"] == 6  # taken over, not restarted
            legacy = (await http.get(f"{second.hub_url}/admin/resend/jobs/{job_id}",
                                     headers=CASEWORKER)).json()
            assert (legacy["state"], legacy["pending"]) == ("finished", 0)
            await wait_until_settled(second, 12, timeout=30)
            keys = {f"EmployeeEnroll:{p.business_key}" for p in resent}
            assert {k: n for k, n in _enrolled(first, second).items() if k in keys} == \
                dict.fromkeys(keys, 1)  # each record resent once, across the restart

            # -- a dead-letter group drained by a dlq.retry job
            second.tax_state.faults[:] = [Fault(kind="http_5xx", match=p.id_number,
                                                operation="EmployeeEnroll") for p in retried]
            for i, p in enumerate(retried):
                await _event(second, http, p, 100 + i)
            letters = DeadLetterStore(second.hub.deps.journal.engine)
            await _dead_letters(letters, DeadLetterFilter(status="dead"), 3)
            (group,) = await letters.groups()
            second.tax_state.faults.clear()
            r = await http.post(f"{second.hub_url}/admin/dead-letters/retry-jobs", headers=OPS,
                                json={"group": {"reason_code": group.reason_code},
                                      "reason": "tax is back", "rate_per_s": 20})
            assert r.status_code == 202, r.text
            drained = await _job(second, http, r.json()["id"])
            assert (drained["state"], drained["total"], drained["done"]) == ("done", 3, 3)
            keys = {f"EmployeeEnroll:{p.business_key}" for p in retried}
            for _ in range(300):  # delivered: counted at tax's simulator
                if all(second.tax_state.log.effects.get(k) for k in keys):
                    break
                await asyncio.sleep(0.1)
            assert {k: second.tax_state.log.effects.get(k) for k in keys} == \
                dict.fromkeys(keys, 1)
            assert await letters.count(DeadLetterFilter(status="dead")) == 0
