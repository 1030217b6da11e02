"""The F12 desk (``services.union``) on a migrated SQLite store, on fixed Beijing dates
around National Day 2025: intake (受理 / 不予受理, notices to the unit and the city union),
the clock stopped and resumed, 理算 and the result file, 终审, archive, 补发, and a
breached timer alerted once; every answer masked."""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.clock import BEIJING
from contracts.union import (
    ACCEPTANCE,
    ARCHIVE,
    CLOSURE,
    CaseApplication,
    FinalNotice,
    UnionStandards,
    parse_closure_file,
)
from services.audit import Caller
from services.union import CaseAction, UnionDesk, adjudicate
from simulators.union import make_case, make_member, make_standards
from storage.audit import AuditLog
from storage.journal import make_engine
from storage.union import UnionStore
from tests.support.fakes import FakePublisher
from tests.support.ops import sqlite_url

CARL = Caller("carl", "caseworker")


@dataclass
class World:
    desk: UnionDesk
    store: UnionStore
    publisher: FakePublisher
    clock: list[datetime]
    members: list[dict[str, str]]

    def at(self, day: str) -> None:
        self.clock[0] = datetime.fromisoformat(day + "T10:00:00").replace(tzinfo=BEIJING)


@pytest.fixture
async def world(template_db: Path, tmp_path: Path) -> AsyncIterator[World]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    store, publisher = UnionStore(engine), FakePublisher()
    clock = [datetime(2025, 9, 30, 10, tzinfo=BEIJING)]
    desk = UnionDesk(store=store, publisher=publisher, audit=AuditLog(engine),
                     now=lambda: clock[0])
    rng = random.Random(11)
    members = [make_member(rng, "U0001") for _ in range(3)]
    await desk.put_standards(2025, UnionStandards.model_validate(make_standards(members)))
    try:
        yield World(desk, store, publisher, clock, members)
    finally:
        await engine.dispose()


def _app(w: World, no: str = "UC2025000001", member: int = 0, **kw: Any) -> CaseApplication:
    return CaseApplication.model_validate(make_case(
        no, w.members[member], year=2025, complete_on=kw.pop("complete_on", date(2025, 9, 26)),
        **kw))


async def test_accepted_case_runs_to_archive_with_its_notices(world: World) -> None:
    w = world
    sub = await w.desk.submit(_app(w))
    assert sub.outcome == "created" and sub.case["status"] == "accepted"
    case_id = sub.case["id"]
    acc = [m for m in w.publisher.published if m.type == ACCEPTANCE]
    assert sorted(m.payload["recipient"] for m in acc) == ["city_union", "unit"]
    assert {m.payload["decision"] for m in acc} == {"受理"}
    view = await w.desk.get(case_id)
    assert view is not None
    assert view["timers"]["accept"] == {"due": "2025-09-29", "status": "breached",
                                        "done": "2025-09-30"}
    assert view["timers"]["close"]["due"] == "2025-10-11"  # across National Day
    # an investigation from 10-09 to 10-10 moves the deadline one working day on
    w.at("2025-10-09")
    assert (await w.desk.act(case_id, CaseAction(action="investigate", reason="面核"),
                             CARL)).outcome == "ok"
    assert (await w.desk.get(case_id))["timers"]["close"]["status"] == "stopped"  # type: ignore[index]
    w.at("2025-10-10")
    r = await w.desk.act(case_id, CaseAction(action="resume", reason="done"), CARL)
    assert r.outcome == "ok" and r.detail == "closure due 2025-10-13"
    r = await w.desk.act(case_id, CaseAction(action="close", reason="审核完毕"), CARL)
    assert r.outcome == "ok" and r.detail == "给付 3500.00"
    (closure,) = [m for m in w.publisher.published if m.type == CLOSURE]
    parsed = parse_closure_file(closure.payload["file_text"])
    assert parsed.payable == Decimal("3500.00") and len(parsed.lines) == 2
    assert closure.payload["file_name"] == "UC_UC2025000001_20251010.txt"
    assert (await w.desk.act(case_id, CaseAction(action="archive", reason="x"),
                             CARL)).outcome == "conflict"  # not final yet
    assert (await w.desk.final("UC2025000001", FinalNotice(final_on=date(2025, 10, 10)))
            ).detail == "archive due 2025-10-16"  # the working Saturday 10-11 counts
    w.at("2025-10-16")
    assert (await w.desk.act(case_id, CaseAction(action="archive", reason="返还"),
                             CARL)).outcome == "ok"
    assert [m.type for m in w.publisher.published].count(ARCHIVE) == 1
    view = await w.desk.get(case_id)
    assert view is not None and view["status"] == "archived"
    assert {k: t["status"] for k, t in view["timers"].items()} == {
        "accept": "breached", "close": "met", "archive": "met"}
    text = repr(view)
    for raw in (w.members[0]["id_number"], w.members[0]["name"], "13800001234"):
        assert raw not in text


async def test_refusals_are_told_too_and_a_repeat_is_the_same_case(world: World) -> None:
    w = world
    app = make_case("UC2025000002", w.members[1], year=2025, complete_on=date(2025, 9, 29))
    app["images"] = [i for i in app["images"] if i["category"] != "ZDZM"]
    sub = await w.desk.submit(CaseApplication.model_validate(app))
    assert sub.case["status"] == "refused" and "ZDZM" in sub.case["reason"]
    assert {m.payload["decision"] for m in w.publisher.published} == {"不予受理"}
    assert (await w.desk.submit(CaseApplication.model_validate(app))).outcome == "same"
    app["urgent"] = True
    assert (await w.desk.submit(CaseApplication.model_validate(app))).outcome == "conflict"
    stranger = make_member(random.Random(99), "U0001")
    other = CaseApplication.model_validate(make_case(
        "UC2025000003", stranger, year=2025, complete_on=date(2025, 9, 29)))
    assert "not on the 2025" in (await w.desk.submit(other)).case["reason"]


async def test_breaches_alert_once_and_lists_filter_by_due(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    w = world
    w.at("2025-09-29")
    a = (await w.desk.submit(_app(w, "UC2025000010"))).case["id"]
    b = (await w.desk.submit(_app(w, "UC2025000011", member=1, urgent=True))).case["id"]
    w.at("2025-10-02")  # closure due 10-10 for both (09-30, 10-09, 10-10): nothing overdue
    assert (await w.desk.overview(due="overdue"))["cases"] == []
    w.at("2025-10-09")
    soon = await w.desk.overview(due="soon")
    assert [c["id"] for c in soon["cases"]] == [b, a]  # urgent first
    w.at("2025-10-11")  # the working Saturday: both overdue
    with caplog.at_level(logging.WARNING, logger="hub.union"):
        assert await w.desk.sweep() == 2
        assert await w.desk.sweep() == 0  # once
    assert "close timer breached" in caplog.text
    assert w.members[0]["id_number"] not in caplog.text
    overdue = await w.desk.overview(due="overdue")
    assert {c["id"] for c in overdue["cases"]} == {a, b}
    alerts = await w.desk.alerts()
    assert {(x["case_id"], x["timer"]) for x in alerts} == {(a, "close"), (b, "close")}


async def test_resend_is_a_new_fact_of_the_same_notice(world: World) -> None:
    w = world
    cid = (await w.desk.submit(_app(w, "UC2025000020"))).case["id"]
    before = {m.idempotency_key for m in w.publisher.published}
    r = await w.desk.act(cid, CaseAction(action="resend", reason="单位未收到",
                                         notice="acceptance"), CARL)
    assert r.outcome == "ok"
    again = w.publisher.published[-2:]
    assert all(m.payload["resend"] for m in again)
    assert not before & {m.idempotency_key for m in again}
    r = await w.desk.act(cid, CaseAction(action="resend", reason="x", notice="closure"), CARL)
    assert r.outcome == "conflict"


def test_adjudication_applies_deductible_ratio_cap_and_window() -> None:
    member = {"id_number": "x", "name": "y", "unit_code": "U0001"}
    app = make_case("UC2025000030", member, year=2025, complete_on=date(2025, 9, 26), bills=3)
    standards = make_standards([])
    f = adjudicate(app, standards, date(2025, 10, 10))
    # (3 x 4000 - 1000) x 0.5
    assert f.payable == Decimal("5500.00") and sum(ln.payable for ln in f.lines) == f.payable
    app["bills"][2]["issued_on"] = "2020-01-01"  # before the diagnosis: not eligible
    f = adjudicate(app, standards, date(2025, 10, 10))
    assert f.payable == Decimal("3500.00") and f.lines[2].payable == 0
    standards["benefits"]["C50"]["cap"] = "100.00"
    assert adjudicate(app, standards, date(2025, 10, 10)).payable == Decimal("100.00")
    standards["benefits"]["C50"]["deductible"] = "99999.00"
    f = adjudicate(app, standards, date(2025, 10, 10))
    assert f.conclusion == "拒付" and f.payable == 0
