"""Identity-confirmation cases (``storage.confirmations``) on SQLite, and alembic 0007:
the table as the model says, down and up again; ``open`` finds instead of duplicating,
``move`` is a compare-and-set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.confirmations import (
    ConfirmationStore,
    IdentityCaseRow,
    NewCase,
    case_id_for,
    confirm_no_for,
    masked_case,
)
from tests.support.migrations import check_migration, engine_copy

ID = "32010219880928997X"
TABLE = IdentityCaseRow.__tablename__


def test_migration_0007_creates_the_table_the_model_describes(template_db: Path,
                                                               tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables={TABLE}, previous="0006")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[ConfirmationStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield ConfirmationStore(engine)


def _new(cid: str = "corr-1") -> NewCase:
    return NewCase(correlation_id=cid, type="tax.flexible.terminate", business_key=ID,
                   entity_key="psn:x", id_number=ID, name="王芳", held_message="{}",
                   reason_code="TX402", reason=f"{ID} 身份信息不唯一")


async def test_open_finds_the_case_of_a_repeat(store: ConfirmationStore) -> None:
    case, created = await store.open(_new())
    again, created_again = await store.open(_new())
    assert created and not created_again and again["id"] == case["id"] == case_id_for("corr-1")
    assert case["confirm_no"] == confirm_no_for(case["id"]) and len(case["confirm_no"]) <= 40
    assert ID not in case["reason"]  # stored masked
    assert (await store.counts())["open"] == 1


async def test_move_is_a_compare_and_set(store: ConfirmationStore) -> None:
    case, _ = await store.open(_new())
    assert await store.move(case["id"], expect=("open",), status="confirmed")
    assert not await store.move(case["id"], expect=("open",), status="confirmed")
    assert not await store.move(case["id"], expect=("confirmed",), status="closed",
                                expect_attempts=5)
    assert await store.move(case["id"], expect=("confirmed",), status="closed")
    closed = await store.get(case["id"])
    assert closed is not None and closed["status"] == "closed" and closed["closed_at"]
    with pytest.raises(ValueError):
        await store.move(case["id"], expect=("closed",), status="gone")


async def test_list_by_status_and_masked(store: ConfirmationStore) -> None:
    a, _ = await store.open(_new("c1"))
    await store.open(_new("c2"))
    await store.move(a["id"], expect=("open",), status="cancelled")
    assert [c["correlation_id"] for c in await store.list()] == ["c2"]
    assert len(await store.list(status=None)) == 2
    shown = masked_case((await store.list(status="cancelled"))[0])
    assert ID not in repr(shown) and shown["name"] == "王*" and "held_message" not in shown
