"""Alembic 0008 on PostgreSQL: the F7 tables go up, down and up again, and the store
(one-transaction receive, compare-and-set review, several identities, the choice case,
the 同步日志) works there (``asyncpg``). Needs PostgreSQL on 5433 (``make postgres``)."""

from __future__ import annotations

import random

import pytest

from contracts.difficulty import check_list
from contracts.ids import make_id_number
from storage.difficulty import DifficultyStore, NewList
from tests.support.migrations import engine_at, pg_down_and_up

pytestmark = pytest.mark.integration

ID = make_id_number(random.Random(5))
ROW = {"change": "增加", "identity": "01", "id_number": ID, "name": "李四",
       "start_date": "2026-11-01"}


def _list(dept: str, ref: str, rows: list[dict[str, object]]) -> NewList:
    check = check_list(dept, "2026-11", rows)
    return NewList(dept, "2026-11", "api", ref, "t", len(rows), check.good, check.refused)


async def _approve(store: DifficultyStore, rid: str) -> bool:
    assert (await store.review(rid, step="first", user="a", approve=True)).outcome == "ok"
    assert (await store.review(rid, step="second", user="a",
                               approve=True)).outcome == "same_reviewer"
    rv = await store.review(rid, step="second", user="b", approve=True)
    assert rv.outcome == "ok"
    return rv.case is not None


async def test_difficulty_tables_and_store_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0007")
    async with engine_at(pg_url) as engine:
        store = DifficultyStore(engine)
        _, a, created = await store.receive(_list("civil_affairs", "L1", [ROW, ROW]))
        assert created and len(a) == 1
        assert not (await store.receive(_list("civil_affairs", "L1", [ROW])))[2]
        assert not await _approve(store, a[0]["id"])
        _, b, _ = await store.receive(_list("agriculture", "G1", [ROW | {"identity": "07"}]))
        assert not await _approve(store, b[0]["id"])
        _, c, _ = await store.receive(_list("civil_affairs", "L2", [
            ROW | {"change": "减少", "end_date": "2026-11-30"}]))
        assert c[0]["comparison"] == "ended"
        assert await _approve(store, c[0]["id"])
        [case] = await store.cases()
        assert (await store.choose(case["id"], "07", "a"))[0] == "ok"
        assert {h["identity"]: (h["active"], h["is_primary"]) for h in await store.held(ID)} \
            == {"01": (False, False), "07": (True, True)}
        await store.log_sync(c[0]["id"], target="core", action="exit", id_number=ID,
                             identity="01", ok=False, reason="core down")
        assert [e["alert"] for e in await store.sync_log(status="failed")] == [True]
