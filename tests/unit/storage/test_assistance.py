"""F7 医疗救助平台 storage: migration 0011 matches the models (and goes down and up), a
settlement recorded once whichever way it comes, a month's data pushed once, the runs,
阳光惠民's daily log."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert

from contracts.ids import make_id_number
from simulators.assistance import make_settlement
from storage.assistance import AssistanceStore, NewSettlement, masked
from storage.difficulty import DifficultyIdentityRow
from storage.times import utc_now
from tests.support.migrations import check_migration, engine_copy

TABLES = {"assistance_settlements", "assistance_settlement_runs", "assistance_sunshine_log"}
IDS = [make_id_number(random.Random(40 + i)) for i in range(3)]


def test_migration_0011_matches_the_models_and_goes_down_and_up(template_db: Path,
                                                                tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables=TABLES, previous="0010", matches="assistance_")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[AssistanceStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        async with engine.begin() as conn:
            await conn.execute(insert(DifficultyIdentityRow), [
                {"id_number": IDS[0], "identity": "01", "department": "civil_affairs",
                 "name": "王五", "start_date": date(2026, 10, 1), "end_date": None,
                 "active": True, "is_primary": True, "record_id": "r0",
                 "updated_at": utc_now()},
                {"id_number": IDS[1], "identity": "06", "department": "trade_union",
                 "name": "李四", "start_date": date(2026, 1, 1), "end_date": date(2026, 9, 30),
                 "active": False, "is_primary": False, "record_id": "r1",
                 "updated_at": utc_now()}])
        yield AssistanceStore(engine)


def _s(i: int, day: int = 5, month: int = 10, total: int = 10_000) -> NewSettlement:
    return NewSettlement(make_settlement(IDS[0], datetime(2026, month, day, 9), total,
                                         setl_id=f"S{i}", name="王五"), "01", "civil_affairs")


async def test_recipients_of_a_month_and_what_they_hold(store: AssistanceStore) -> None:
    assert await store.recipients_of(date(2026, 10, 1), date(2026, 10, 31)) == [IDS[0]]
    assert sorted(await store.recipients_of(date(2026, 9, 1), date(2026, 9, 30))) == sorted(
        [IDS[1]])
    assert sorted(await store.recipients_of(date(2026, 9, 1), date(2026, 10, 31))) == sorted(
        IDS[:2])
    held = await store.held_for(IDS)
    assert set(held) == set(IDS[:2]) and held[IDS[1]][0]["identity"] == "06"


async def test_a_settlement_is_recorded_once_and_joins_each_way_out_once(
        store: AssistanceStore) -> None:
    [(row, created)] = await store.record([_s(1)], source="event")
    assert created and row["sync_status"] == "pending" and row["data_status"] == ""
    [(again, created)] = await store.record([_s(1, total=99_999)], source="event")
    assert not created and again["medfee_total"] == "100.00"  # the first is kept
    [(joined, created)] = await store.record([_s(1)], source="run")
    assert not created and joined["data_status"] == "pending"
    assert joined["sync_status"] == "pending"
    assert await store.set_sync(row["id"], "queued", expect=("pending",))
    assert not await store.set_sync(row["id"], "queued", expect=("pending",))
    shown = masked(joined)
    assert IDS[0] not in str(shown) and shown["name"] == "王*"


async def test_a_months_data_is_pushed_once_and_adds_up(store: AssistanceStore) -> None:
    await store.record([_s(i, day=i + 1, total=10_001 * (i + 1)) for i in range(5)]
                       + [_s(9, month=11)], source="run")
    totals = await store.data_totals("202610")
    assert totals.count == 5 and totals.medfee_total == Decimal("1500.15")
    page = await store.data_due("202610", limit=3)
    assert [r["setl_id"] for r in page] == ["S0", "S1", "S2"]
    assert [r["setl_id"] for r in await store.data_due("202610", limit=3)] == ["S0", "S1",
                                                                                "S2"]
    await store.data_pushed([r["id"] for r in page])
    assert [r["setl_id"] for r in await store.data_due("202610", limit=3)] == ["S3", "S4"]
    assert (await store.data_totals("202610")) == totals  # pushed rows stay in the header
    await store.start_run("202610", "a")
    await store.finish_run("202610", status="done", rows=5, pushed=3, totals=totals)
    await store.start_run("202610", "b")
    run = await store.run("202610")
    assert run is not None and run["runs"] == 2 and run["status"] == "running"
    assert masked(run)["totals"]["medfee_total"] == "1500.15"


async def test_sunshine_fees_once_a_day(store: AssistanceStore) -> None:
    await store.record([_s(1), _s(2, month=11)], source="event")
    first, last = date(2026, 1, 1), date(2026, 11, 30)
    due = await store.fees_due("20261130", first, last, limit=10)
    assert [r["setl_id"] for r in due] == ["S1", "S2"]
    await store.log_sunshine("fees", "20261130", [due[0]["id"]], ok=True)
    await store.log_sunshine("fees", "20261130", [due[1]["id"]], ok=False, reason="503")
    assert [r["setl_id"] for r in await store.fees_due("20261130", first, last,
                                                          limit=10)] == ["S2"]
    assert len(await store.fees_due("20261201", first, last, limit=10)) == 2
    assert await store.sunshine_pushed("fees", "20261130") == {due[0]["id"]}
