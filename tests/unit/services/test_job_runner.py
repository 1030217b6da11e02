"""``services.job_runner``: durable jobs on SQLite (in memory, one engine shared by the
runners that stand for two processes or a process before and after a crash)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from services.audit import Caller
from services.job_runner import JobRunner, UnknownKind
from services.jobs import JobContext

ALICE = Caller("alice", "caseworker")
OLGA = Caller("olga", "operations")
ID = "320102199005170017"


class Counter:
    """A handler over ``n`` items: each item done once, counted here (the "partner")."""

    def __init__(self, n: int = 10, *, gate: asyncio.Event | None = None,
                 stop_at: int | None = None) -> None:
        self.n, self.gate, self.stop_at = n, gate, stop_at
        self.effects: list[int] = []
        self.reached = asyncio.Event()

    async def __call__(self, ctx: JobContext) -> Mapping[str, Any]:
        start = int(ctx.checkpoint.get("next", 0))
        if start == 0:
            await ctx.set_total(self.n)
        for i in range(start, self.n):
            if await ctx.cancelled():
                return {"stopped_at": i}
            if self.stop_at is not None and i == self.stop_at:
                self.reached.set()
                assert self.gate is not None
                await self.gate.wait()
            self.effects.append(i)
            await ctx.advance(done=1, checkpoint={"next": i + 1})
            await asyncio.sleep(0)
        return {"items": self.n, "person": ID}


@pytest.fixture
async def runner() -> AsyncIterator[JobRunner]:
    r = JobRunner.memory(progress_every_s=0.0, cancel_check_s=0.0, lease_s=5)
    await r.list()  # the table, for the runners made over its engine
    yield r
    await r.close()
    await r.engine.dispose()


async def test_a_job_runs_to_done_with_its_progress_and_masked_report(runner: JobRunner) -> None:
    h = Counter(5)
    runner.register("count", h)
    job = await runner.start("count", {"id_number": ID, "n": 5}, ALICE)
    assert job.kind == "count" and job.started_by == "alice" and job.role == "caseworker"
    assert job.params == {"id_number": "320102********0017", "n": 5}  # readers: masked
    done = await runner.wait(job.id, timeout_s=5)
    assert (done.state, done.total, done.done, done.progress) == ("done", 5, 5, 1.0)
    assert done.report["person"] == "320102********0017"
    assert h.effects == [0, 1, 2, 3, 4]
    with pytest.raises(UnknownKind):
        await runner.start("nope", {}, ALICE)


async def test_a_failing_handler_ends_failed_with_a_masked_error(runner: JobRunner) -> None:
    async def boom(ctx: JobContext) -> Mapping[str, Any]:
        raise RuntimeError(f"partner refused {ID}")

    runner.register("boom", boom)
    job = await runner.wait((await runner.start("boom", {}, ALICE)).id, timeout_s=5)
    assert job.state == "failed" and job.error is not None
    assert "RuntimeError" in job.error and ID not in job.error


async def test_cancel_stops_a_running_job_at_its_next_item(runner: JobRunner) -> None:
    gate = asyncio.Event()
    h = Counter(10, gate=gate, stop_at=3)
    runner.register("count", h)
    job = await runner.start("count", {}, ALICE)
    await asyncio.wait_for(h.reached.wait(), 5)
    asked = await runner.cancel(job.id, OLGA)
    assert asked is not None and asked.cancel_requested and not asked.finished
    gate.set()
    end = await runner.wait(job.id, timeout_s=5)
    assert end.state == "cancelled" and end.done == 4 and h.effects == [0, 1, 2, 3]
    assert end.report == {"stopped_at": 4}
    assert await runner.cancel("missing", OLGA) is None


async def test_the_cancel_flag_is_read_from_sql_by_another_process(runner: JobRunner) -> None:
    """Cancelled through a second runner (another hub process): the first sees the flag."""
    gate = asyncio.Event()
    h = Counter(10, gate=gate, stop_at=2)
    runner.register("count", h)
    other = JobRunner(runner.engine, cancel_check_s=0.0)
    job = await runner.start("count", {}, ALICE)
    await asyncio.wait_for(h.reached.wait(), 5)
    await other.cancel(job.id, OLGA)
    gate.set()
    assert (await runner.wait(job.id, timeout_s=5)).state == "cancelled"
    assert h.effects == [0, 1, 2]


async def test_over_the_limit_jobs_wait_queued_and_run_when_a_slot_frees() -> None:
    r = JobRunner.memory(limit=1, progress_every_s=0.0)
    try:
        gate = asyncio.Event()
        first, second = Counter(3, gate=gate, stop_at=1), Counter(2)
        r.register("first", first)
        r.register("second", second)
        a = await r.start("first", {}, ALICE)
        b = await r.start("second", {}, ALICE)
        assert (a.state, b.state) == ("running", "queued")
        queued = await r.start("second", {}, ALICE)
        assert (await r.cancel(queued.id, ALICE)).state == "cancelled"  # type: ignore[union-attr]
        gate.set()
        assert (await r.wait(b.id, timeout_s=5)).state == "done"
        assert second.effects == [0, 1]  # the cancelled queued one never ran
    finally:
        await r.close()
        await r.engine.dispose()


async def test_list_filters_by_starter_kind_and_state(runner: JobRunner) -> None:
    runner.register("count", Counter(1))
    mine = await runner.start("count", {}, ALICE)
    theirs = await runner.start("count", {}, OLGA)
    for j in (mine, theirs):
        await runner.wait(j.id, timeout_s=5)
    assert [j.id for j in await runner.list(started_by="alice")] == [mine.id]
    assert {j.id for j in await runner.list(kind="count", state="done")} == {mine.id, theirs.id}
    assert await runner.list(state="running") == []


async def test_a_crashed_process_job_is_resumed_from_its_checkpoint(runner: JobRunner) -> None:
    """Process A dies mid-job (no release: its lease just runs out); process B, a new
    runner over the same database, takes the row over and goes on from the checkpoint:
    every item is done exactly once."""
    gate = asyncio.Event()
    a_handler = Counter(8, gate=gate, stop_at=5)
    a = JobRunner(runner.engine, owner="A", lease_s=0.3, progress_every_s=0.0)
    a.register("count", a_handler)
    job = await a.start("count", {"n": 8}, ALICE)
    await asyncio.wait_for(a_handler.reached.wait(), 5)
    run = a._runs[job.id]  # the crash: the task dies, nothing is written or released
    run.ctx.lost = True
    run.task.cancel()
    await asyncio.gather(run.task, return_exceptions=True)
    row = await a.store.get(job.id)
    assert row is not None and (row.state, row.lease_owner, row.done) == ("running", "A", 5)

    b_handler = Counter(8)
    b = JobRunner(runner.engine, owner="B", lease_s=5, progress_every_s=0.0, poll_s=0.05)
    b.register("count", b_handler)
    assert await b.pump() == 0  # A's lease still holds
    await b.open()
    try:
        end = await b.wait(job.id, timeout_s=5)
    finally:
        await b.close()
    assert (end.state, end.done, end.total) == ("done", 8, 8)
    assert a_handler.effects + b_handler.effects == list(range(8))
    resumed = await b.store.get(job.id)
    assert resumed is not None and resumed.runs == 2 and resumed.lease_owner is None


async def test_a_graceful_stop_lets_go_and_the_next_start_resumes_at_once(
        runner: JobRunner) -> None:
    gate = asyncio.Event()
    h = Counter(6, gate=gate, stop_at=2)
    first = JobRunner(runner.engine, owner="first", lease_s=60, progress_every_s=10)
    first.register("count", h)
    job = await first.start("count", {}, ALICE)
    await asyncio.wait_for(h.reached.wait(), 5)
    await first.close()  # progress written although throttled; lease released
    row = await first.store.get(job.id)
    assert row is not None and (row.state, row.lease_owner, row.done) == ("running", None, 2)
    again = Counter(6)
    second = JobRunner(runner.engine, owner="second", progress_every_s=0.0)
    second.register("count", again)
    assert await second.pump() == 1  # no waiting for a 60 s lease
    assert (await second.wait(job.id, timeout_s=5)).done == 6
    assert h.effects + again.effects == list(range(6))
    await second.close()


async def test_a_process_that_lost_its_lease_stops_writing(runner: JobRunner) -> None:
    gate = asyncio.Event()
    h = Counter(6, gate=gate, stop_at=2)
    a = JobRunner(runner.engine, owner="A", lease_s=60, progress_every_s=0.0)
    a.register("count", h)
    job = await a.start("count", {}, ALICE)
    await asyncio.wait_for(h.reached.wait(), 5)
    # another process took it over (as after an expiry): A's next write finds it out
    async with runner.engine.begin() as conn:
        from sqlalchemy import update

        from storage.jobs import JobRow
        await conn.execute(update(JobRow).where(JobRow.id == job.id).values(lease_owner="B"))
    gate.set()
    for _ in range(200):
        if not a.running_here():
            break
        await asyncio.sleep(0.01)
    assert a.running_here() == []
    row = await a.store.get(job.id)
    assert row is not None and (row.state, row.lease_owner, row.done) == ("running", "B", 2)
    await a.close()
