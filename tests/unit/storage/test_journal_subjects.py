"""The journal records who a transaction is about (keyed hashes), once per transaction,
and finds a subject's transactions by hash; without a key it records nothing."""

from __future__ import annotations

import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from contracts.ids import make_credit_code, make_id_number
from contracts.subjects import subject_hash
from storage.journal import Journal, TransactionSubject, TxnUpdate, make_engine
from tests.support.migrations import check_migration
from tests.support.ops import sqlite_url

RNG = random.Random(1515)
ID, OTHER = make_id_number(RNG), make_id_number(RNG)
USCC = make_credit_code(RNG)
KEY = b"test-subject-key-" + bytes(RNG.randrange(256) for _ in range(16))


async def _open(template_db: Path, tmp_path: Path, key: bytes | None) -> Journal:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    j = Journal(make_engine(sqlite_url(path)), flush_ms=5, subject_key=key)
    await j.start()
    return j


@pytest.fixture
async def journal(template_db: Path, tmp_path: Path) -> AsyncIterator[Journal]:
    j = await _open(template_db, tmp_path, KEY)
    try:
        yield j
    finally:
        await j.stop()
        await j.engine.dispose()


async def _rows(j: Journal) -> list[tuple[str, str, str]]:
    s = TransactionSubject
    async with j.engine.connect() as conn:
        return [(str(c), str(k), str(h)) for c, k, h in (await conn.execute(
            select(s.correlation_id, s.kind, s.subject_hash).order_by(
                s.correlation_id, s.kind))).all()]


async def test_each_subject_of_a_transaction_is_recorded_once(journal: Journal) -> None:
    key = f"{USCC}:{ID}"
    await journal.write(TxnUpdate("c1", "tax.employee.enroll", key, "core", "received",
                                  only_if_new=True))
    await journal.write(TxnUpdate("c1", "tax.employee.enroll", key, "core", "submitted"))
    await journal.write(TxnUpdate("c1", "tax.employee.enroll", key, "hub", "delivered"))
    await journal.write(TxnUpdate("c2", "tax.flexible.enroll", f"psn:{OTHER}", "core",
                                  "received"),
                        TxnUpdate("c3", "channel.application", "my_nanjing:R1", "my_nanjing",
                                  "received", subjects=(OTHER,)))
    assert await _rows(journal) == [
        ("c1", "person", subject_hash(KEY, "person", ID)),
        ("c1", "unit", subject_hash(KEY, "unit", USCC)),
        ("c2", "person", subject_hash(KEY, "person", OTHER)),
        ("c3", "person", subject_hash(KEY, "person", OTHER))]
    async with journal.engine.connect() as conn:  # only hashes at rest
        dump = " ".join(str(r) for r in (await conn.execute(
            text("SELECT * FROM transaction_subjects"))).all())
    assert ID not in dump and OTHER not in dump


async def test_a_subject_finds_its_transactions_newest_first(journal: Journal) -> None:
    await journal.write(TxnUpdate("old", "t", f"psn:{ID}", "core", "rejected"))
    await journal.write(TxnUpdate("new", "t", f"{USCC}:{ID}", "core", "delivered"))
    await journal.write(TxnUpdate("else", "t", f"psn:{OTHER}", "core", "delivered"))
    rows, total = await journal.by_subject("person", journal.subject_hash("person", ID))
    assert total == 2 and [r["correlation_id"] for r in rows] == ["new", "old"]
    rows, total = await journal.by_subject("person", journal.subject_hash("person", ID),
                                           limit=1, offset=1)
    assert total == 2 and [r["correlation_id"] for r in rows] == ["old"]
    rows, total = await journal.by_subject("unit", journal.subject_hash("unit", USCC))
    assert [r["correlation_id"] for r in rows] == ["new"]
    # an ID number is never found as a unit
    assert (await journal.by_subject("unit", journal.subject_hash("unit", ID)))[1] == 0


async def test_a_journal_without_a_key_records_no_subjects(template_db: Path,
                                                           tmp_path: Path) -> None:
    j = await _open(template_db, tmp_path, None)
    try:
        await j.write(TxnUpdate("c1", "t", f"psn:{ID}", "core", "received"))
        assert await _rows(j) == []
        with pytest.raises(RuntimeError, match="subject_hash_key"):
            j.subject_hash("person", ID)
    finally:
        await j.stop()
        await j.engine.dispose()


def test_migration_0015_matches_the_model_and_goes_down_and_up(template_db: Path,
                                                               tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables={"transaction_subjects"}, previous="0014",
                    matches="transaction_subjects")
