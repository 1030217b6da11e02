"""``api.jobs``: who sees and cancels which job, and the dead-letter retry job endpoint
(in memory over a migrated SQLite file; the retry's sends recorded by a fake requeue)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import jobs as jobs_api
from api.auth import Authenticator
from api.deps import ApiState, bind
from api.problems import install_problem_handlers
from broker.topology import Names
from services.dead_letters import RETRY_KIND, DeadLetterDesk, RetryJobRequest
from services.job_runner import JobRunner
from tests.support.ops import PRINCIPALS, Db, RecordingIdem, Sent, bearer, fake_deps, letter


@dataclass
class Rig:
    http: httpx.AsyncClient
    db: Db
    sent: Sent
    jobs: JobRunner


@pytest.fixture
async def rig(db: Db) -> AsyncIterator[Rig]:
    idem, sent = RecordingIdem(), Sent()
    runner = JobRunner(db.store.engine, progress_every_s=0.0, cancel_check_s=0.0)
    desk = DeadLetterDesk(store=db.store, audit=db.audit, idem=idem, names=Names("t"),
                          send=sent)
    runner.register(RETRY_KIND, desk.retry_job, check=lambda p: RetryJobRequest.model_validate(
        dict(p)).model_dump(mode="json", exclude_none=True))
    state = ApiState(deps=replace(fake_deps(idem), jobs=runner), audit=db.audit,
                     dead_letters=db.store, auth=Authenticator(PRINCIPALS, db.audit))
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(bind(jobs_api.router, state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as http:
        yield Rig(http, db, sent, runner)
    await runner.close()


GROUP: dict[str, Any] = {"group": {"reason_code": "UNAVAILABLE"}, "reason": "tax is back"}


async def _finished(rig: Rig, job_id: str) -> dict[str, Any]:
    for _ in range(500):
        got: dict[str, Any] = (await rig.http.get(f"/admin/jobs/{job_id}",
                                                  headers=bearer("operations"))).json()
        if got["finished"]:
            return got
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} still running")


async def test_operations_start_a_retry_job_and_watch_it_drain(rig: Rig) -> None:
    for i in range(4):
        await rig.db.store.add(letter(i))
    r = await rig.http.post("/admin/dead-letters/retry-jobs", json=GROUP | {"rate_per_s": 500},
                            headers=bearer("operations"))
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["kind"], job["started_by"], job["params"]["group"]) == (
        "dlq.retry", "olga", {"reason_code": "UNAVAILABLE"})
    end = await _finished(rig, job["id"])
    assert (end["state"], end["total"], end["done"], end["progress"]) == ("done", 4, 4, 1.0)
    assert len(rig.sent.calls) == 4
    (start,) = await rig.db.audit.list(action="job.start")
    assert (start.actor, start.target) == ("olga", f"job:{job['id']}")
    # a caseworker sees only their own jobs; another's is not found, not even to cancel
    mine = await rig.http.get("/admin/jobs", headers=bearer("caseworker"))
    assert mine.status_code == 200 and mine.json()["items"] == []
    for method, path in (("GET", f"/admin/jobs/{job['id']}"),
                         ("POST", f"/admin/jobs/{job['id']}/cancel")):
        assert (await rig.http.request(method, path, headers=bearer("caseworker"))
                ).status_code == 404
    every = await rig.http.get("/admin/jobs", params={"kind": "dlq.retry", "state": "done"},
                               headers=bearer("admin"))
    assert [j["id"] for j in every.json()["items"]] == [job["id"]]
    late = await rig.http.post(f"/admin/jobs/{job['id']}/cancel", headers=bearer("admin"))
    assert late.status_code == 409 and late.json()["code"] == "CONFLICT"


async def test_a_running_retry_job_is_cancelled_and_the_cancel_audited(rig: Rig) -> None:
    for i in range(6):
        await rig.db.store.add(letter(i))
    job = (await rig.http.post("/admin/dead-letters/retry-jobs",
                               json=GROUP | {"rate_per_s": 5},
                               headers=bearer("operations"))).json()
    r = await rig.http.post(f"/admin/jobs/{job['id']}/cancel", headers=bearer("operations"))
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    end = await _finished(rig, job["id"])
    assert end["state"] == "cancelled" and end["done"] < 6
    assert len(rig.sent.calls) == end["done"]
    (row,) = await rig.db.audit.list(action="job.cancel")
    assert (row.actor, row.outcome) == ("olga", "ok")


async def test_refusals(rig: Rig) -> None:
    r = await rig.http.post("/admin/dead-letters/retry-jobs", json=GROUP,
                            headers=bearer("caseworker"))
    assert r.status_code == 403
    r = await rig.http.post("/admin/dead-letters/retry-jobs",
                            json=GROUP | {"ids": [1]}, headers=bearer("operations"))
    assert r.status_code == 422 and "exactly one of ids, group or all" in r.text
    r = await rig.http.get("/admin/jobs", params={"state": "exploded"},
                           headers=bearer("readonly"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "state"
    assert (await rig.http.get("/admin/jobs")).status_code == 401
    assert rig.sent.calls == [] and await rig.jobs.list() == []
