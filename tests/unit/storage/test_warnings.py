"""F8 warning rows (``storage.warnings``) on SQLite, and alembic 0009: the tables as the
models say; ``add`` keeps rows already there; ``move`` is a compare-and-set; answers masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from contracts.warnings import ExpenseWarning, SelfPaid
from storage.warnings import ExpenseWarningRow, WarningRunRow, WarningStore, masked_row
from tests.support.migrations import check_migration, engine_copy

ID = "32010219880928997X"
TABLES = {ExpenseWarningRow.__tablename__, WarningRunRow.__tablename__}


def _w(dept: str = "civil_affairs", month: str = "202611", paid: int = 90000,
       id_number: str = ID) -> ExpenseWarning:
    return ExpenseWarning(department=dept, month=month, kinds=("poverty",),  # type: ignore[arg-type]
                          line=Decimal(80000), person=SelfPaid(
                              id_number=id_number, name="王小明", rural=False,
                              insurance="employee", self_paid=Decimal(paid)))


def test_migration_0009_creates_the_tables_the_models_describe(template_db: Path,
                                                                tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables=TABLES, previous="0008")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[WarningStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield WarningStore(engine)


async def test_add_keeps_what_is_there_per_department_month_and_person(
        store: WarningStore) -> None:
    assert await store.add([_w(), _w("union")]) == 2
    # the month again, core's figure moved: the same rows, nothing new
    assert await store.add([_w(paid=95000), _w("union")]) == 0
    assert await store.add([_w(month="202612")]) == 1
    rows = await store.rows("202611")
    assert [r["department"] for r in rows] == ["civil_affairs", "union"]
    assert rows[0]["self_paid"] == "90000.00" and rows[0]["status"] == "pending"


async def test_move_is_compare_and_set_and_summary_counts(store: WarningStore) -> None:
    w = _w()
    await store.add([w, _w("union")])
    assert await store.move(w.id, expect=("pending",), status="queued")
    assert not await store.move(w.id, expect=("pending",), status="queued")
    assert await store.move(w.id, expect=("queued",), status="acknowledged", ack_no="A1")
    assert not await store.move(w.id, expect=("pending", "queued", "dead"), status="dead")
    row = await store.get(w.id)
    assert row is not None and row["ack_no"] == "A1" and row["acked_at"] is not None
    summary = await store.summary("202611")
    assert summary["civil_affairs"]["acknowledged"] == 1
    assert summary["union"]["pending"] == 1
    with pytest.raises(ValueError):
        await store.move(w.id, expect=("queued",), status="lost")


async def test_runs_count_and_rows_are_masked(store: WarningStore) -> None:
    await store.start_run("202611", "ops")
    await store.start_run("202611", "ops")
    await store.finish_run("202611", people=3, warnings=2, published=0)
    run = await store.run("202611")
    assert run is not None and run["runs"] == 2 and run["status"] == "done"
    await store.add([_w()])
    shown = masked_row((await store.rows("202611"))[0])
    assert ID not in str(shown) and "王小明" not in str(shown) and "payload" not in shown
    assert shown["kinds"] == ["poverty"]
