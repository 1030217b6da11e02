"""``storage.jobs``: alembic 0016 matches the model; take is a compare-and-set; writes need
the lease; a cancel of a queued job ends it at once (SQLite; PostgreSQL in
tests/integration/storage/test_jobs_pg.py)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.jobs import JobRow, JobStore
from tests.support.migrations import check_migration, engine_copy


def test_migration_0016_creates_the_table_the_model_describes(template_db: Path,
                                                             tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables={JobRow.__tablename__}, previous="0015")


async def exercise(engine: AsyncEngine) -> None:
    """The store's rules, on whichever database ``engine`` is (shared with the PG test)."""
    s = JobStore(engine)
    await s.insert(id="j1", kind="count", started_by="alice", role="caseworker",
                   params={"n": 1}, resume={"n": 1, "ids": [1, 2]})
    await s.insert(id="j2", kind="count", started_by="olga", role="operations",
                   params={}, resume={})
    assert await s.free(["count"], 10) == ["j1", "j2"] and await s.free(["other"], 10) == []
    assert await s.active("count") == 2
    a = await s.take("j1", "A", 30)
    assert a is not None and (a.state, a.lease_owner, a.runs, a.resume["ids"]) == (
        "running", "A", 1, [1, 2])
    assert await s.take("j1", "B", 30) is None  # A holds it
    assert await s.free(["count"], 10) == ["j2"]
    assert await s.progress("j1", "A", total=3, done=1, failed=0, skipped=1,
                            checkpoint={"next": 2})
    assert not await s.progress("j1", "B", total=3, done=9, failed=0, skipped=0,
                                checkpoint={})
    assert await s.renew("j1", "A", 30) is False and await s.renew("j1", "B", 30) is None
    got = await s.request_cancel("j1")
    assert got is not None and got.cancel_requested and got.state == "running"
    assert await s.renew("j1", "A", 30) is True
    assert await s.release("j1", "A")
    b = await s.take("j1", "B", 30)  # let go: taken over at once, from its checkpoint
    assert b is not None and (b.runs, b.checkpoint, b.done, b.skipped) == (2, {"next": 2}, 1, 1)
    assert not await s.finish("j1", "A", state="done", report={})
    assert await s.finish("j1", "B", state="cancelled", report={"stopped": 2})
    q = await s.request_cancel("j2")
    assert q is not None and q.state == "cancelled" and q.finished_at is not None
    assert await s.take("j2", "A", 30) is None and await s.active("count") == 0
    assert [r.id for r in await s.list(started_by="alice")] == ["j1"]
    assert [r.id for r in await s.list(kind="count", state="cancelled")] == ["j2", "j1"]
    assert await s.get("nope") is None and await s.request_cancel("nope") is None


async def test_the_store_on_sqlite(template_db: Path, tmp_path: Path) -> None:
    async with engine_copy(template_db, tmp_path) as engine:
        await exercise(engine)
