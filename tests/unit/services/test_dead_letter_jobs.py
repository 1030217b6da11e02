"""The ``dlq.retry`` job (``DeadLetterDesk.retry_job`` on ``services.job_runner``): a group
drains paced with progress, a cancel stops it, a crashed run is resumed after the last
letter handled and no letter is sent twice (SQLite; sends recorded by a fake requeue)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from broker.topology import Names
from services.audit import Caller
from services.dead_letters import RETRY_KIND, DeadLetterDesk, RetryJobRequest
from services.job_runner import JobRunner
from tests.support.ops import Db, RecordingIdem, Sent, letter

OPS = Caller("olga", "operations")
GROUP = {"group": {"reason_code": "UNAVAILABLE"}, "reason": "tax is back"}


class Gated(Sent):
    """Sends wait at call number ``stop`` until ``gate`` opens."""

    def __init__(self, stop: int) -> None:
        super().__init__()
        self.stop, self.gate, self.reached = stop, asyncio.Event(), asyncio.Event()

    async def __call__(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        if len(self.calls) == self.stop:
            self.reached.set()
            await self.gate.wait()
        await super().__call__(body, queue, headers)


def runner(db: Db, sent: Sent, **kw: Any) -> JobRunner:
    r = JobRunner(db.store.engine, progress_every_s=0.0, cancel_check_s=0.0, **kw)
    desk = DeadLetterDesk(store=db.store, audit=db.audit, idem=RecordingIdem(),
                          names=Names("t"), send=sent)
    r.register(RETRY_KIND, desk.retry_job,
               check=lambda p: RetryJobRequest.model_validate(dict(p)).model_dump(
                   mode="json", exclude_none=True))
    return r


async def _letters(db: Db) -> list[int]:
    ids = [await db.store.add(letter(i)) for i in range(5)]
    await db.store.add(letter(7, reason_code="REJECTED"))
    await db.store.add(letter(8, status="archived"))
    return ids


async def test_a_group_drains_with_progress_and_an_audited_end(db: Db) -> None:
    ids = await _letters(db)
    sent = Sent()
    r = runner(db, sent)
    job = await r.start(RETRY_KIND, GROUP | {"rate_per_s": 500}, OPS)
    assert job.params["group"] == {"reason_code": "UNAVAILABLE"}
    end = await r.wait(job.id, timeout_s=10)
    assert (end.state, end.total, end.done, end.failed, end.skipped) == ("done", 5, 5, 0, 0)
    assert len(sent.calls) == 5 and end.report["retried"] == ids
    assert [(await db.store.get(i)).status for i in ids] == ["retried"] * 5  # type: ignore[union-attr]
    (row,) = await db.audit.list(action="dead_letter.retry")
    assert (row.outcome, row.detail["job"], row.detail["done"]) == ("ok", job.id, 5)
    await r.close()


async def test_ids_with_a_missing_one_and_a_cancel(db: Db) -> None:
    ids = await _letters(db)
    sent = Gated(stop=2)
    r = runner(db, sent)
    job = await r.start(RETRY_KIND, {"ids": [*ids, 999], "reason": "by hand"}, OPS)
    await asyncio.wait_for(sent.reached.wait(), 5)
    await r.cancel(job.id, OPS)
    sent.gate.set()
    end = await r.wait(job.id, timeout_s=10)
    assert end.state == "cancelled" and end.total == 6 and end.done == 3  # the third in flight
    assert len(sent.calls) == 3
    assert [(await db.store.get(i)).status for i in ids[3:]] == ["dead", "dead"]  # type: ignore[union-attr]
    (row,) = await db.audit.list(action="dead_letter.retry")
    assert row.outcome == "cancelled"
    await r.close()


async def test_a_crashed_retry_job_resumes_after_the_last_letter_handled(db: Db) -> None:
    ids = await _letters(db)
    first = Gated(stop=2)
    a = runner(db, first, owner="A", lease_s=0.3)
    job = await a.start(RETRY_KIND, GROUP | {"rate_per_s": 500}, OPS)
    await asyncio.wait_for(first.reached.wait(), 5)
    run = a._runs[job.id]  # the process dies here: nothing released
    run.ctx.lost = True
    run.task.cancel()
    await asyncio.gather(run.task, return_exceptions=True)
    await db.store.add(letter(20, dead_at=datetime.now(UTC)))  # not part of "the group"
    then = Sent()
    b = runner(db, then, owner="B", poll_s=0.05)
    await b.open()
    end = await b.wait(job.id, timeout_s=10)
    await b.close()
    # the third letter was marked retried but not sent when A died: B sends it first
    assert len(first.calls) == 2 and len(then.calls) == 3
    sent_ids = [c[2]["x-retry-of"] for c in first.calls + then.calls]
    assert sent_ids == ids  # each once, the one dead after the job began not at all
    assert (end.state, end.total, end.done, end.skipped) == ("done", 5, 5, 0)
