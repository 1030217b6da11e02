"""Alembic 0009 on PostgreSQL: the F8 tables go up, down and up again, and the store's
insert-or-keep, run upsert and compare-and-set work there (``asyncpg``). Needs PostgreSQL
on 5433 (``make postgres``); each test works in a database of its own, dropped afterwards."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts.warnings import ExpenseWarning, SelfPaid
from storage.warnings import WarningStore
from tests.support.migrations import engine_at, pg_down_and_up

pytestmark = pytest.mark.integration

ID = "32010219880928997X"


def _w(dept: str = "union") -> ExpenseWarning:
    return ExpenseWarning(department=dept, month="202611", kinds=("poverty",),  # type: ignore[arg-type]
                          line=Decimal(81250), person=SelfPaid(
                              id_number=ID, name="王小明", rural=False, insurance="employee",
                              self_paid=Decimal("90000.5")))


async def test_warning_store_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0008")
    async with engine_at(pg_url) as engine:
        store = WarningStore(engine)
        await store.start_run("202611", "ops")
        await store.start_run("202611", "ops")
        assert (await store.run("202611") or {})["runs"] == 2
        assert await store.add([_w(), _w("civil_affairs")]) == 2
        assert await store.add([_w()]) == 0
        w = _w()
        assert await store.move(w.id, expect=("pending",), status="queued")
        assert not await store.move(w.id, expect=("pending",), status="queued")
        assert await store.move(w.id, expect=("queued",), status="acknowledged", ack_no="A")
        summary = await store.summary("202611")
        assert summary["union"]["acknowledged"] == 1 and summary["civil_affairs"]["pending"] == 1
