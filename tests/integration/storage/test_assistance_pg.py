"""Alembic 0011 on PostgreSQL: the 医疗救助平台 tables go up, down and up again, and the
store (a settlement recorded once, a month's data pushed once, the runs' upsert, 阳光惠民's
log) works there (``asyncpg``). Needs PostgreSQL on 5433 (``make postgres``)."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert

from contracts.ids import make_id_number
from simulators.assistance import make_settlement
from storage.assistance import AssistanceStore, NewSettlement
from storage.difficulty import DifficultyIdentityRow
from storage.times import utc_now
from tests.support.migrations import engine_at, pg_down_and_up

pytestmark = pytest.mark.integration

ID = make_id_number(random.Random(15))


def _s(i: int, month: int = 10) -> NewSettlement:
    return NewSettlement(make_settlement(ID, datetime(2026, month, 2 + i, 9), 10_001 * (i + 1),
                                         setl_id=f"S{i}", name="王五"), "01", "civil_affairs")


async def test_assistance_tables_and_store_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0010")
    async with engine_at(pg_url) as engine:
        async with engine.begin() as conn:
            await conn.execute(insert(DifficultyIdentityRow).values(
                id_number=ID, identity="01", department="civil_affairs", name="王五",
                start_date=date(2026, 9, 1), end_date=None, active=True, is_primary=True,
                record_id="r", updated_at=utc_now()))
        store = AssistanceStore(engine)
        assert await store.recipients_of(date(2026, 10, 1), date(2026, 10, 31)) == [ID]
        [(row, created)] = await store.record([_s(0)], source="event")
        assert created and row["sync_status"] == "pending"
        got = await store.record([_s(0), _s(1), _s(2, month=11)], source="run")
        assert [c for _, c in got] == [False, True, True]
        assert got[0][0]["data_status"] == "pending"
        totals = await store.data_totals("202610")
        assert totals.count == 2 and totals.medfee_total == Decimal("300.03")
        page = await store.data_due("202610", limit=1)
        await store.data_pushed([page[0]["id"]])
        assert [r["setl_id"] for r in await store.data_due("202610", limit=5)] == ["S1"]
        for actor in ("a", "b"):
            await store.start_run("202610", actor)
        await store.finish_run("202610", status="done", rows=2, totals=totals)
        run = await store.run("202610")
        assert run is not None and run["runs"] == 2 and run["status"] == "done"
        due = await store.fees_due("20261130", date(2026, 1, 1), date(2026, 11, 30), limit=9)
        assert len(due) == 3
        await store.log_sunshine("fees", "20261130", [r["id"] for r in due[:2]], ok=True)
        assert len(await store.fees_due("20261130", date(2026, 1, 1), date(2026, 11, 30),
                                        limit=9)) == 1
        assert await store.set_sync(row["id"], "queued", expect=("pending",))
