"""F7 storage: migration 0008 matches the models (and goes down and up), 比对 against what
the hub holds, a list stored once, the two review steps, several identities per person."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.difficulty import DifficultyRecord, check_list
from contracts.ids import make_id_number
from storage.difficulty import DifficultyStore, NewList, compare, masked
from tests.support.migrations import check_migration, engine_copy

TABLES = {"difficulty_lists", "difficulty_records", "difficulty_identities",
          "difficulty_sync_log", "difficulty_cases"}
ID = make_id_number(random.Random(21))


def test_migration_0008_matches_the_models_and_goes_down_and_up(template_db: Path,
                                                                tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables=TABLES, previous="0007", matches="difficulty_")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[DifficultyStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield DifficultyStore(engine)


def _rec(**kw: object) -> DifficultyRecord:
    values = {"change": "add", "identity": "01", "id_number": ID, "name": "李四",
              "start_date": "2026-11-01"} | kw
    return DifficultyRecord.model_validate(values)


def test_compare_reads_what_the_hub_holds() -> None:
    held = {"active": True, "department": "civil_affairs", "start_date": _rec().start_date,
            "end_date": None}
    assert compare(_rec(), "civil_affairs", None) == "new"
    assert compare(_rec(), "civil_affairs", held | {"active": False}) == "new"
    assert compare(_rec(), "civil_affairs", held) == "unchanged"
    assert compare(_rec(end_date="2026-12-31"), "civil_affairs", held) == "changed"
    assert compare(_rec(), "veterans", held) == "conflict"
    assert compare(_rec(change="remove", end_date="2026-11-30"), "civil_affairs",
                   held) == "ended"
    assert compare(_rec(change="remove", end_date="2026-11-30"), "civil_affairs",
                   None) == "conflict"


def _list(dept: str, ref: str, rows: list[dict[str, object]]) -> NewList:
    check = check_list(dept, "2026-11", rows)
    return NewList(dept, "2026-11", "api", ref, "t", len(rows), check.good, check.refused)


ROW = {"change": "增加", "identity": "01", "id_number": ID, "name": "李四",
       "start_date": "2026-11-01", "phone": "13912345678"}


async def _approve(store: DifficultyStore, rid: str) -> None:
    assert (await store.review(rid, step="first", user="a", approve=True)).outcome == "ok"
    rv = await store.review(rid, step="second", user="b", approve=True)
    assert rv.outcome == "ok"


async def test_a_list_is_stored_once_and_its_refusals_masked(store: DifficultyStore) -> None:
    lst = _list("civil_affairs", "L1", [ROW, ROW | {"identity": "99"}])
    row, records, created = await store.receive(lst)
    assert created and row["accepted"] == 1 and row["refused"] == 1
    assert [r["status"] for r in records] == ["first_review"]
    again, records2, created2 = await store.receive(lst)
    assert not created2 and again["id"] == row["id"]
    assert [r["id"] for r in records2] == [r["id"] for r in records]
    shown = masked(records2[0])
    assert ID not in str(shown) and "13912345678" not in str(shown)
    assert (await store.counts())["first_review"] == 1


async def test_review_is_two_steps_by_two_accounts(store: DifficultyStore) -> None:
    _, records, _ = await store.receive(_list("civil_affairs", "L1", [ROW]))
    rid = records[0]["id"]
    assert (await store.review(rid, step="second", user="a", approve=True)).outcome == "conflict"
    assert (await store.review(rid, step="first", user="a", approve=True)).outcome == "ok"
    assert (await store.review(rid, step="first", user="a", approve=True)).outcome == "conflict"
    assert (await store.review(rid, step="second", user="a",
                               approve=True)).outcome == "same_reviewer"
    rv = await store.review(rid, step="second", user="b", approve=True)
    assert rv.outcome == "ok" and rv.primary and rv.record and rv.record["status"] == "approved"
    held = await store.held(ID)
    assert [(h["identity"], h["active"], h["is_primary"]) for h in held] == [("01", True, True)]
    # the same again is unchanged; a 减少 of something not held is refused by 比对
    _, records, _ = await store.receive(_list("civil_affairs", "L2", [ROW]))
    assert records[0]["status"] == "unchanged"
    other = make_id_number(random.Random(99))
    _, records, _ = await store.receive(_list("civil_affairs", "L3", [
        ROW | {"id_number": other, "change": "减少", "end_date": "2026-11-30"}]))
    assert records[0]["status"] == "rejected" and records[0]["comparison"] == "conflict"


async def test_several_identities_ending_the_treatment_one_opens_a_choice(
        store: DifficultyStore) -> None:
    _, a, _ = await store.receive(_list("civil_affairs", "L1", [ROW]))
    await _approve(store, a[0]["id"])
    _, b, _ = await store.receive(_list("agriculture", "G1", [ROW | {"identity": "07"}]))
    rv_b = await store.review(b[0]["id"], step="first", user="a", approve=True)
    assert rv_b.outcome == "ok"
    rv_b = await store.review(b[0]["id"], step="second", user="b", approve=True)
    assert not rv_b.primary  # 01 carries the treatment already
    _, c, _ = await store.receive(_list("civil_affairs", "L2", [
        ROW | {"change": "减少", "end_date": "2026-11-30"}]))
    assert c[0]["comparison"] == "ended"
    await store.review(c[0]["id"], step="first", user="a", approve=True)
    rv = await store.review(c[0]["id"], step="second", user="b", approve=True)
    assert rv.case is not None and rv.primary
    held = {h["identity"]: h for h in await store.held(ID)}
    assert not held["01"]["active"] and held["07"]["active"]  # the other identity stays
    case = (await store.cases())[0]
    assert (await store.choose(case["id"], "01", "a"))[0] == "invalid"  # ended
    outcome, closed, chosen = await store.choose(case["id"], "07", "a")
    assert outcome == "ok" and closed and chosen and chosen["is_primary"]
    assert (await store.choose(case["id"], "07", "a"))[0] == "conflict"
    assert {h["identity"]: h["is_primary"] for h in await store.held(ID)} == {"01": False,
                                                                              "07": True}


async def test_sync_log_keeps_failures_as_alerts_masked(store: DifficultyStore) -> None:
    await store.log_sync("r1", target="core", action="enter", id_number=ID, identity="01",
                         ok=False, reason=f"core refused {ID}")
    await store.log_sync("r2", target="core", action="enter", id_number=ID, identity="01",
                         ok=True)
    failed = await store.sync_log(status="failed")
    assert [(e["record_id"], e["alert"]) for e in failed] == [("r1", True)]
    assert ID not in failed[0]["reason"]
    assert len(await store.sync_log()) == 2


async def test_held_active_and_a_departments_month(store: DifficultyStore) -> None:
    """The 困难人员库 of the student batch (1816) and the records a 补发 reads."""
    other = make_id_number(random.Random(22))
    assert await store.held_active([ID, other]) == {}
    _, a, _ = await store.receive(_list("civil_affairs", "L1", [ROW]))
    _, g, _ = await store.receive(_list("agriculture", "G1", [ROW | {"identity": "07"}]))
    assert await store.held_active([ID]) == {}  # not before 复核
    await _approve(store, a[0]["id"])
    await _approve(store, g[0]["id"])
    assert await store.held_active([ID, other]) == {ID: ["01", "07"]}  # the primary first
    _, c, _ = await store.receive(_list("civil_affairs", "L2", [
        ROW | {"change": "减少", "end_date": "2026-11-20"}]))
    await _approve(store, c[0]["id"])
    assert await store.held_active([ID]) == {ID: ["07"]}  # ended ones are not held
    month = await store.records_of_month("civil_affairs", "2026-11")
    assert [(r["id"], r["list_ref"]) for r in month] == [(a[0]["id"], "L1"), (c[0]["id"], "L2")]
    assert await store.records_of_month("civil_affairs", "2026-11", id_number=other) == []
    assert await store.records_of_month("civil_affairs", "2026-10") == []
    assert [r["id"] for r in await store.records_of_month("agriculture", "2026-11")] == \
        [g[0]["id"]]
