"""``ReturnFileStore.payer_records``: one payer's stored return-file records, for the queries
the hub answers itself (``contracts.taxcat.STORED_ANSWERS``), on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.returnfile import ReturnFileName, ReturnRecord, synthetic_records
from storage.journal import make_engine
from storage.models import Base
from storage.returnfile_models import (
    ReturnFileNameRow,
    ReturnFileRow,
    ReturnLineErrorRow,
    ReturnRecordRow,
)
from storage.returnfiles import FileCounts, ReturnFileStore

TABLES = [Base.metadata.tables[m.__tablename__] for m in (
    ReturnFileRow, ReturnFileNameRow, ReturnRecordRow, ReturnLineErrorRow)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ReturnFileStore]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=TABLES))
    try:
        yield ReturnFileStore(engine, lease_s=0)
    finally:
        await engine.dispose()


async def put(store: ReturnFileStore, kind: str, records: list[ReturnRecord], sha: str,
              *, finish: bool = True) -> None:
    name = ReturnFileName(kind, "20250115", sha[-4:])
    assert await store.claim(sha, name.name, name, 100)
    if finish:
        await store.finish(sha, records, [], FileCounts(records=len(records)))
    else:
        await store.add_chunk(sha, records, [])


async def test_one_payers_deductions_in_the_months_asked(store: ReturnFileStore) -> None:
    deduct = list(synthetic_records("flex_deduct", 60, seed=3, fail_every=2))
    payer = deduct[0].payer_code
    await put(store, "flex_deduct", deduct, "a" * 60 + "0001")
    await put(store, "flex_pay", list(synthetic_records("flex_pay", 5, seed=3)), "b" * 60 + "0002")
    rows = await store.payer_records(("flex_deduct", "special_deduct"), payer, "202501",
                                     "202501")
    want = [r for r in deduct if r.payer_code == payer]
    assert [r for _, r in rows] == want and {k for k, _ in rows} == {"flex_deduct"}
    assert await store.payer_records(("flex_deduct",), payer, "202502", "202512") == []


async def test_a_file_still_processing_does_not_answer(store: ReturnFileStore) -> None:
    deduct = list(synthetic_records("flex_deduct", 3, seed=4))
    await put(store, "flex_deduct", deduct, "c" * 60 + "0003", finish=False)
    assert await store.payer_records(("flex_deduct",), deduct[0].payer_code, "202501",
                                     "202501") == []


async def test_special_records_are_kept_by_mode(store: ReturnFileStore) -> None:
    special = list(synthetic_records("special_deduct", 30, seed=5))
    await put(store, "special_deduct", special, "d" * 60 + "0004")
    flexible = next(r for r in special if r.mode == "2")
    rows = await store.payer_records(("special_deduct",), flexible.payer_code, "202501",
                                     "202501", mode="2")
    assert rows and all(r.mode == "2" for _, r in rows)
    resident = next(r for r in special if r.mode == "3")
    assert await store.payer_records(("special_deduct",), resident.payer_code, "202501",
                                     "202501", mode="2") == []
