"""Bulk 补发 jobs exclude each other per record (``services.resend_claims``).

Two identical bulk requests started at once resend each record once: the second job
leaves the records the first holds to it and reports them as ``in_other_job``. The
API runs in memory over fake ports and a real journal on SQLite (the selection and
the re-check are the real queries); the claims are the in-memory store here and Redis
in tests/integration/services/test_resend_claims_redis.py.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.messages import ENROLL, STOP
from services import resend_jobs
from services.audit import Caller
from services.deps import Deps
from services.resend_claims import MemoryResendClaims, claim_key
from services.resend_jobs import BulkResendRequest, ResendJob, ResendJobs, run_job
from services.resend_targets import ResendFilter, select_resend_targets, still_latest
from services.resender import Resender
from storage.journal import Journal, make_engine
from tests.support.fakes import FakeAudit, FakeCore, FakePublisher
from tests.unit.services.test_resend import PEOPLE, T0, _deps, _wait_job, resend_app, seed

WHO = Caller("li.si", "caseworker")
BULK = {"filter": {"status": "dead"}, "action": "enroll", "reason": "税务恢复后批量补发",
        "rate_per_s": 50}


@dataclass
class Rig:
    http: httpx.AsyncClient
    deps: Deps
    claims: MemoryResendClaims
    publisher: FakePublisher
    journal: Journal
    audit: FakeAudit
    jobs: ResendJobs
    core: FakeCore

    def resender(self) -> Resender:
        return Resender(core=self.core, publisher=self.publisher,  # type: ignore[arg-type]
                        journal=self.journal, audit=self.audit)


@pytest.fixture
async def rig(template_db: Path, tmp_path: Path) -> AsyncIterator[Rig]:
    shutil.copy(template_db, tmp_path / "hub.db")
    journal = Journal(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"), flush_ms=5)
    await journal.start()
    core, publisher, audit, jobs = FakeCore(*PEOPLE), FakePublisher(), FakeAudit(), ResendJobs()
    claims = MemoryResendClaims()
    deps = replace(_deps(core=core, journal=journal, publisher=publisher), resend_claims=claims)
    app = resend_app(deps, audit, jobs=jobs)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub.test") as http:
        yield Rig(http, deps, claims, publisher, journal, audit, jobs, core)
    await jobs.aclose()
    await journal.stop()
    await journal.engine.dispose()


async def _dead(rig: Rig, n: int = 4) -> None:
    await seed(rig.journal, *((f"c{i}", ENROLL, p, "dead", T0 + timedelta(seconds=i))
                              for i, p in enumerate(PEOPLE[:n])))


def _sent(rig: Rig) -> list[str]:
    return sorted(m.payload["id_number"] for m in rig.publisher.sent)


# ---------------------------------------------------------------- the store


async def test_the_memory_store_claims_renews_releases_and_expires() -> None:
    claims, now = MemoryResendClaims(), [100.0]
    claims.now = lambda: now[0]
    assert await claims.claim(["a", "b"], "j1", 10) == {}
    assert await claims.claim(["b", "c"], "j2", 10) == {"b": "j1"}
    assert await claims.claim(["a"], "j1", 10) == {}  # ours again: fine
    now[0] += 8
    await claims.renew(["a", "b", "c"], "j1", 10)  # c is j2's: left alone
    now[0] += 5  # j1's renewed claims live on, j2's expired
    assert await claims.claim(["a", "b", "c"], "j3", 10) == {"a": "j1", "b": "j1"}
    await claims.release(["a", "b", "c"], "j2")  # not j2's any more: nothing freed
    assert await claims.claim(["a"], "j3", 10) == {"a": "j1"}
    await claims.release(["a", "b"], "j1")
    assert await claims.claim(["a", "b"], "j3", 10) == {}


def test_a_claim_key_names_no_person() -> None:
    p = PEOPLE[0]
    key = claim_key("employee", p.business_key)
    assert p.id_number not in key and key.startswith("employee:")
    assert key != claim_key("unit", p.business_key)


# ---------------------------------------------------------------- two jobs at once


async def test_two_identical_bulk_resends_started_at_once_resend_each_record_once(
        rig: Rig) -> None:
    await _dead(rig)
    first, second = await asyncio.gather(
        rig.http.post("/admin/resend/employee/bulk", json=BULK),
        rig.http.post("/admin/resend/employee/bulk", json=BULK))
    assert first.status_code == second.status_code == 202
    views = [await _wait_job(rig.http, r.json()["job_id"]) for r in (first, second)]
    assert _sent(rig) == sorted(p.id_number for p in PEOPLE)  # each once
    assert sum(v["total"] for v in views) == 4 and sum(v["done"] for v in views) == 4
    assert [v["total"] + v["in_other_job"] for v in views] == [4, 4]
    assert [first.json()["in_other_job"], second.json()["in_other_job"]] == \
        [v["in_other_job"] for v in views]
    for view, other in zip(views, reversed(views), strict=True):
        skipped = [s for s in view["skips"] if s["code"] == "IN_OTHER_JOB"]
        assert len(skipped) == view["in_other_job"]
        assert all(s["reason"] == f"in another job {other['job_id']}" for s in skipped)
        assert all(PEOPLE[0].id_number not in str(s) for s in skipped)
        assert view["pending"] == 0 and view["state"] == "finished"
    assert rig.claims.held == {}  # every claim released at the end


async def test_the_second_of_two_identical_jobs_leaves_everything_to_the_first(
        rig: Rig) -> None:
    await _dead(rig)
    slow = BULK | {"rate_per_s": 5}
    first = (await rig.http.post("/admin/resend/employee/bulk", json=slow)).json()
    second = (await rig.http.post("/admin/resend/employee/bulk", json=slow)).json()
    assert (first["total"], first["in_other_job"]) == (4, 0)
    assert (second["total"], second["in_other_job"]) == (0, 4)
    assert (await _wait_job(rig.http, second["job_id"]))["state"] == "finished"
    await _wait_job(rig.http, first["job_id"])
    assert _sent(rig) == sorted(p.id_number for p in PEOPLE)


async def test_overlapping_selections_share_their_records_out(rig: Rig) -> None:
    await _dead(rig, 3)
    await seed(rig.journal, ("s1", STOP, PEOPLE[3], "dead", T0 + timedelta(seconds=9)))
    enroll_only = BULK | {"filter": {"status": "dead", "type": ENROLL}, "rate_per_s": 5}
    a = (await rig.http.post("/admin/resend/employee/bulk", json=enroll_only)).json()
    b = (await rig.http.post("/admin/resend/employee/bulk", json=BULK)).json()
    assert (a["total"], b["total"], b["in_other_job"]) == (3, 1, 3)
    for job in (a, b):
        await _wait_job(rig.http, job["job_id"])
    assert _sent(rig) == sorted(p.id_number for p in PEOPLE)


async def test_a_record_resent_since_it_was_selected_is_skipped(rig: Rig) -> None:
    """The window claims cannot close alone: job B selected before job A resent and
    released, and claims after. Just before each send B sees the newer transaction."""
    await _dead(rig, 2)
    body = BulkResendRequest.model_validate(BULK)
    stale = await select_resend_targets(rig.journal.engine, body.filter, 10)
    first = await rig.jobs.start(body, WHO, resender=rig.resender(), engine=rig.journal.engine,
                                 claims=rig.claims)
    await _wait_job(rig.http, first.job_id)
    assert [await still_latest(rig.journal.engine, t) for t in stale] == [False, False]
    late = ResendJob(job_id="late", actor="x", role="caseworker", action="enroll",
                     reason="x", filter={}, total=len(stale))
    await run_job(late, stale, body, rig.resender(), claims=rig.claims,
                  keys=[claim_key("employee", t.business_key) for t in stale],
                  engine=rig.journal.engine)
    assert (late.done, late.skipped, late.view()["pending"]) == (0, 2, 0)
    assert {s["code"] for s in late.skips} == {"RESENT_SINCE"}
    assert len(rig.publisher.sent) == 2


async def test_claims_are_renewed_while_a_job_runs(rig: Rig,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resend_jobs, "CLAIM_TTL_S", 0.15)
    renewed: list[tuple[str, ...]] = []
    real = rig.claims.renew

    async def renew(keys: Sequence[str], owner: str, ttl_s: float) -> None:
        renewed.append(tuple(keys))
        await real(keys, owner, ttl_s)

    monkeypatch.setattr(rig.claims, "renew", renew)
    await _dead(rig, 3)
    r = await rig.http.post("/admin/resend/employee/bulk", json=BULK | {"rate_per_s": 4})
    view = await _wait_job(rig.http, r.json()["job_id"])
    assert view["done"] == 3 and len(renewed) >= 3  # 0.5 s of work, a renewal per 0.05 s
    assert rig.claims.held == {}


class DownClaims(MemoryResendClaims):
    async def claim(self, keys: Sequence[str], owner: str, ttl_s: float) -> dict[str, str]:
        raise ConnectionError("redis gone")


async def test_without_the_claim_store_no_job_starts(rig: Rig) -> None:
    await _dead(rig, 2)
    rig.deps.__dict__["resend_claims"] = DownClaims()  # frozen dataclass: a test's shortcut
    r = await rig.http.post("/admin/resend/employee/bulk", json=BULK)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "UNAVAILABLE" and "redis gone" in r.text
    assert rig.publisher.sent == [] and await rig.jobs.runner.list() == []


# ---------------------------------------------------------------- refusals, not 500s


async def test_a_huge_job_id_is_simply_not_found(rig: Rig) -> None:
    r = await rig.http.get("/admin/resend/jobs/99999999999999999999")
    assert r.status_code == 404


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_a_since_without_a_utc_equivalent_is_a_422_naming_it(rig: Rig,
                                                                    since: str) -> None:
    body: dict[str, Any] = BULK | {"filter": {"status": "dead", "since": since}}
    r = await rig.http.post("/admin/resend/employee/bulk", json=body)
    assert r.status_code == 422, r.text
    assert any(e["loc"][-2:] == ["filter", "since"] for e in r.json()["errors"])
    with pytest.raises(ValueError, match="no UTC equivalent"):
        ResendFilter.model_validate({"status": "dead", "since": since})
