"""The journal on a SQLite file: group commit, upsert rules, reads, masking at rest."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from storage.journal import Journal, LogEntry, RequestRecord, TxnUpdate, make_engine
from tests.support.ops import sqlite_url

ID = "320102199005170017"
PHONE = "13812345678"


@pytest.fixture
async def journal(template_db: Path, tmp_path: Path) -> AsyncIterator[Journal]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    j = Journal(make_engine(sqlite_url(path)), flush_ms=10)
    await j.start()
    try:
        yield j
    finally:
        await j.stop()
        await j.engine.dispose()


def _log(i: int = 0, **over: Any) -> LogEntry:
    base: dict[str, Any] = {"message_id": f"m{i}", "correlation_id": f"c{i}",
                            "type": "tax.employee.enroll", "partner": "tax", "direction": "out",
                            "hop": "tax.employee", "outcome": "ok", "attempt": 1,
                            "duration_ms": 3, "detail": ""}
    return LogEntry(**(base | over))


def _txn(cid: str, status: str, **over: Any) -> TxnUpdate:
    base: dict[str, Any] = {"correlation_id": cid, "type": "tax.employee.enroll",
                            "business_key": f"bk-{cid}", "source": "core", "status": status}
    return TxnUpdate(**(base | over))


async def _count(j: Journal, table: str) -> int:
    async with j.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_schema_is_created_by_the_migration(journal: Journal) -> None:
    for table in ("interaction_log", "transactions", "partner_requests"):
        assert await _count(journal, table) == 0


async def test_concurrent_writes_are_group_committed(journal: Journal) -> None:
    commits: list[int] = []
    event.listen(journal.engine.sync_engine, "commit", lambda conn: commits.append(1))
    n = 50
    results = await asyncio.gather(*(journal.write(_log(i), _txn(f"c{i}", "submitted"))
                                     for i in range(n)))
    assert results == [None] * n
    assert await _count(journal, "interaction_log") == n
    assert await _count(journal, "transactions") == n
    assert 1 <= len(commits) <= 2, f"{n} writes took {len(commits)} commits"


async def test_write_returns_only_after_commit(journal: Journal) -> None:
    await journal.write(_log(1))
    assert [r["message_id"] for r in await journal.log_for("c1")] == ["m1"]


async def test_write_without_the_writer_task_commits_inline(template_db: Path,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "inline.db"
    shutil.copy(template_db, path)
    j = Journal(make_engine(sqlite_url(path)))
    try:
        await j.write(_log(1), _txn("c1", "submitted"))
        assert (await j.transaction("c1") or {})["status"] == "submitted"
    finally:
        await j.engine.dispose()


async def test_a_failed_commit_fails_every_writer_of_the_batch(journal: Journal) -> None:
    async with journal.engine.begin() as conn:
        await conn.execute(text("DROP TABLE interaction_log"))
    results = await asyncio.gather(journal.write(_log(1)), journal.write(_log(2), _txn("c2", "x")),
                                   return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert await journal.transaction("c2") is None  # nothing of the batch was committed
    # the writer survives the failure and commits the next batch
    await asyncio.wait_for(journal.write(_txn("c3", "submitted")), timeout=5)
    assert (await journal.transaction("c3") or {})["status"] == "submitted"


async def test_plain_update_inserts_then_overwrites(journal: Journal) -> None:
    await journal.write(_txn("c1", "submitted", attempts=1))
    await journal.write(_txn("c1", "accepted", reason_code="R0", reason="ok", attempts=2))
    row = await journal.transaction("c1")
    assert row is not None
    assert (row["status"], row["reason_code"], row["reason"], row["attempts"]) == \
        ("accepted", "R0", "ok", 2)
    assert row["business_key"] == "bk-c1"


async def test_only_if_new_does_not_overwrite(journal: Journal) -> None:
    await journal.write(_txn("c1", "submitted"))
    await journal.write(_txn("c1", "received", only_if_new=True))
    assert (await journal.transaction("c1") or {})["status"] == "submitted"
    await journal.write(_txn("c2", "received", only_if_new=True))
    assert (await journal.transaction("c2") or {})["status"] == "received"


async def test_only_if_new_in_the_same_batch_yields_to_a_plain_update(journal: Journal) -> None:
    await journal.write(_txn("c1", "submitted"), _txn("c1", "received", only_if_new=True))
    assert (await journal.transaction("c1") or {})["status"] == "submitted"


async def test_only_if_exists_does_not_insert(journal: Journal) -> None:
    await journal.write(_txn("c1", "retrying", only_if_exists=True))
    assert await journal.transaction("c1") is None
    await journal.write(_txn("c1", "submitted"))
    await journal.write(_txn("c1", "retrying", reason_code="TIMEOUT", attempts=3,
                             only_if_exists=True))
    row = await journal.transaction("c1")
    assert row is not None
    assert (row["status"], row["reason_code"], row["attempts"]) == ("retrying", "TIMEOUT", 3)


async def test_a_finished_transaction_is_not_moved_back(journal: Journal) -> None:
    await journal.write(_txn("c1", "delivered"))
    await journal.write(_txn("c1", "submitted"))
    await journal.write(_txn("c1", "retrying", only_if_exists=True))
    assert (await journal.transaction("c1") or {})["status"] == "delivered"
    # a final outcome may still replace another final outcome
    await journal.write(_txn("c1", "dead", only_if_exists=True))
    assert (await journal.transaction("c1") or {})["status"] == "dead"


async def test_request_roundtrip(journal: Journal) -> None:
    rec = RequestRecord(serial="m1", partner="tax", correlation_id="c1",
                        type="tax.employee.enroll", business_key="uscc:id",
                        entity_key="person-1", accept_no="A100")
    await journal.write(rec)
    got = await journal.request("m1")
    assert got is not None
    assert (got.serial, got.partner, got.correlation_id, got.type, got.business_key,
            got.entity_key, got.accept_no) == \
        ("m1", "tax", "c1", "tax.employee.enroll", "uscc:id", "person-1", "A100")
    assert await journal.request("unknown") is None


async def test_a_repeated_request_updates_only_the_accept_no(journal: Journal) -> None:
    await journal.write(RequestRecord("m1", "tax", "c1", "t.x", "bk", accept_no="A1"))
    await journal.write(RequestRecord("m1", "tax", "c1", "t.y", "bk2", accept_no="A2"))
    got = await journal.request("m1")
    assert got is not None
    assert (got.correlation_id, got.type, got.business_key, got.accept_no) == \
        ("c1", "t.x", "bk", "A2")


async def test_a_second_transaction_under_a_known_serial_is_closed_as_a_duplicate(
        journal: Journal) -> None:
    """The same fact posted again after Redis lost its keys: same serial, new transaction."""
    await journal.write(RequestRecord("s1", "tax", "c1", "t.x", "bk", accept_no="A1"),
                        _txn("c1", "submitted"))
    await journal.write(_txn("c2", "received", only_if_new=True))
    await journal.write(RequestRecord("s1", "tax", "c2", "t.x", "bk", accept_no="A1"),
                        _txn("c2", "submitted"))
    assert (await journal.transaction("c2") or {})["status"] == "duplicate"
    assert "c1" in (await journal.transaction("c2") or {})["reason"]
    assert (await journal.transaction("c1") or {})["status"] == "submitted"
    got = await journal.request("s1")
    assert got is not None and got.correlation_id == "c1"


async def test_the_same_serial_twice_in_one_group_keeps_the_first(journal: Journal) -> None:
    await asyncio.gather(
        journal.write(RequestRecord("s2", "tax", "c1", "t.x", "bk"), _txn("c1", "submitted")),
        journal.write(RequestRecord("s2", "tax", "c2", "t.x", "bk"), _txn("c2", "submitted")))
    statuses = {(await journal.transaction(c) or {})["status"] for c in ("c1", "c2")}
    assert statuses == {"submitted", "duplicate"}


async def test_a_data_error_fails_only_its_own_writer_not_the_group(journal: Journal) -> None:
    bad = _log(1, message_id=None)  # NOT NULL: a data error, not an outage
    results = await asyncio.gather(journal.write(bad), journal.write(_txn("c2", "submitted")),
                                   journal.write(_log(3)), return_exceptions=True)
    assert isinstance(results[0], Exception) and results[1:] == [None, None]
    assert (await journal.transaction("c2") or {})["status"] == "submitted"


async def test_status_counts(journal: Journal) -> None:
    await journal.write(_txn("a", "delivered"), _txn("b", "delivered"), _txn("c", "rejected"),
                        _txn("d", "delivered", type="core.sync_status"))
    assert await journal.status_counts() == {"delivered": 3, "rejected": 1}
    assert await journal.status_counts("core.sync_status") == {"delivered": 1}
    assert await journal.status_counts("nothing.here") == {}


async def test_reasons_most_common_first(journal: Journal) -> None:
    await journal.write(
        _txn("a", "rejected", reason_code="E1", reason="dup"),
        _txn("b", "rejected", reason_code="E2", reason="bad unit"),
        _txn("c", "rejected", reason_code="E2", reason="bad unit"),
        _txn("d", "dead", reason_code="TIMEOUT", reason="slow"),
    )
    assert await journal.reasons("rejected") == [("E2", "bad unit", 2), ("E1", "dup", 1)]
    assert await journal.reasons("rejected", limit=1) == [("E2", "bad unit", 2)]
    assert await journal.reasons("dead") == [("TIMEOUT", "slow", 1)]


async def test_personal_data_is_masked_at_rest(journal: Journal) -> None:
    await journal.write(
        _log(1, detail={"id_number": ID, "name": "张三", "note": f"phone {PHONE}"}),
        _log(1, message_id="m1b", detail=f"tax refused {ID}, call {PHONE}"),
        _txn("c1", "rejected", reason=f"[E1001] {ID} already enrolled"),
    )
    rows = await journal.log_for("c1")
    assert len(rows) == 2
    for row in rows:
        assert ID not in row["detail"] and PHONE not in row["detail"]
        assert "320102********0017" in row["detail"]
        assert "138****5678" in row["detail"]
    assert "张三" not in rows[0]["detail"]
    txn = await journal.transaction("c1")
    assert txn is not None
    assert ID not in txn["reason"] and "320102********0017" in txn["reason"]


async def test_log_detail_is_truncated(journal: Journal) -> None:
    await journal.write(_log(1, detail="x" * 5000))
    assert len((await journal.log_for("c1"))[0]["detail"]) == 4000


async def test_stop_flushes_pending_writes(template_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "stop.db"
    shutil.copy(template_db, path)
    j = Journal(make_engine(sqlite_url(path)), flush_ms=1000)
    await j.start()
    try:
        pending = asyncio.ensure_future(j.write(_txn("c1", "submitted")))
        await asyncio.sleep(0)  # the write joins the batch; the writer waits 1 s
        await j.stop()
        await asyncio.wait_for(pending, timeout=2)
        assert (await j.transaction("c1") or {})["status"] == "submitted"
    finally:
        await j.engine.dispose()


async def test_stop_during_a_flush_does_not_strand_writers(template_db: Path,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    shutil.copy(template_db, path)
    j = Journal(make_engine(sqlite_url(path)), flush_ms=1)
    await j.start()
    lock = sqlite3.connect(path, isolation_level=None)
    pending: asyncio.Future[None] | None = None
    try:
        lock.execute("BEGIN EXCLUSIVE")  # the writer's flush blocks on the database lock
        pending = asyncio.ensure_future(j.write(_txn("c1", "submitted")))
        await asyncio.sleep(0.1)
        assert not pending.done()
        stopping = asyncio.ensure_future(j.stop())
        await asyncio.sleep(0.05)
        lock.execute("ROLLBACK")
        await asyncio.wait_for(stopping, timeout=2)
        # the write must end one way or the other: committed, or raised to its caller
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(pending), timeout=1)
        assert pending.done(), "the writer is stranded"
    finally:
        lock.close()
        if pending is not None and not pending.done():
            pending.cancel()
        await j.engine.dispose()
