"""F7 desk: the batch file way in (CSV/XLSX, GBK or UTF-8) and caseworker entry through
the same checks; 复核 publishes to the platform and core; immediate answers are told."""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import openpyxl
import pytest

from contracts.difficulty import COLUMNS, CORE_SYNC, PLATFORM_PUSH
from services.audit import Caller
from services.difficulty import DifficultyDesk
from simulators.departments import make_records
from storage.difficulty import DifficultyStore
from storage.journal import make_engine
from tests.support.fakes import FakeAudit, FakePublisher
from tests.support.ops import sqlite_url
from tools.demo_difficulty import gbk_csv

A, B = Caller("a", "caseworker"), Caller("b", "caseworker")


@pytest.fixture
async def desk(template_db: Path, tmp_path: Path) -> AsyncIterator[DifficultyDesk]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    try:
        yield DifficultyDesk(DifficultyStore(engine), FakePublisher(), FakeAudit())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def _xlsx(records: list[dict[str, object]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["困难人员名单"])  # a title row above the header is not the header
    ws.append(list(COLUMNS))
    for r in records:
        ws.append([r.get(f, "") for f in COLUMNS.values()])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def test_a_gbk_csv_is_read_and_bad_rows_named_by_file_row(desk: DifficultyDesk) -> None:
    rows = make_records(random.Random(1), "civil_affairs", 3, bad=2)
    raw = gbk_csv(rows)
    raw.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    got = await desk.import_file("civil_affairs", "2026-11", "mz.csv", raw, "a")
    assert got["accepted"] and got["kept"] == 3 and got["channel"] == "file"
    assert {(r["row"], r["field"]) for r in got["refused"]} == {(5, "identity"),
                                                               (6, "id_number")}
    again = await desk.import_file("civil_affairs", "2026-11", "mz.csv", raw, "a")
    assert again["duplicate"] and again["list_id"] == got["list_id"]


async def test_a_file_longer_than_a_list_may_be_is_refused_whole(
        desk: DifficultyDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.difficulty.MAX_LIST_ROWS", 2)
    raw = gbk_csv(make_records(random.Random(4), "civil_affairs", 3))
    got = await desk.import_file("civil_affairs", "2026-11", "mz.csv", raw, "a")
    assert not got["accepted"] and got["refused"][0]["row"] == 0
    assert got["refused"][0]["field"] == "文件" and "at most 2" in got["refused"][0]["reason"]
    assert (await desk.store.counts()) == {} or sum((await desk.store.counts()).values()) == 0


async def test_an_xlsx_with_a_title_row_and_a_file_without_a_column(desk: DifficultyDesk) -> None:
    rows = make_records(random.Random(2), "veterans", 2)
    got = await desk.import_file("veterans", "2026-11", "v.xlsx", _xlsx(rows), "a")
    # a title row above the header is skipped; rows are numbered as Excel shows them
    assert got["accepted"] and [r["row"] for r in got["records"]] == [3, 4], got
    raw = ("姓名,身份证号\n张三,x\n").encode()
    got = await desk.import_file("veterans", "2026-11", "v.csv", raw, "a")
    assert not got["accepted"] and "缺少必填列" in got["refused"][0]["reason"]
    got = await desk.import_file("veterans", "2026-11", "v.pdf", b"%PDF", "a")
    assert not got["accepted"]


async def test_xlsx_list_is_read(desk: DifficultyDesk) -> None:
    rows = make_records(random.Random(3), "agriculture", 2)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(list(COLUMNS))
    for r in rows:
        ws.append([r.get(f, "") for f in COLUMNS.values()])
    buf = io.BytesIO()
    wb.save(buf)
    got = await desk.import_file("agriculture", "2026-11", "g.xlsx", buf.getvalue(), "a")
    assert got["accepted"] and got["kept"] == 2, got


async def test_entry_review_and_the_messages_of_approval(desk: DifficultyDesk) -> None:
    row = make_records(random.Random(4), "trade_union", 1)[0]
    got = await desk.enter("trade_union", "2026-11", row, "a")
    assert got["accepted"] and got["channel"] == "entry"
    rid = got["records"][0]["record_id"]
    pub = desk.publisher
    assert isinstance(pub, FakePublisher)
    [r] = await desk.review([rid], approve=True, reason="", actor=A)
    assert r.status == "second_review" and pub.published == []
    [r] = await desk.review([rid], approve=True, reason="", actor=A)
    assert r.outcome == "same_reviewer"
    [r] = await desk.review([rid], approve=True, reason="", actor=B)
    assert r.status == "approved"
    assert [m.type for m in pub.published] == [PLATFORM_PUSH, CORE_SYNC]
    assert pub.published[1].payload["primary"] is True
    assert (await desk.review(["0" * 32], approve=True, reason="", actor=B))[0].outcome == \
        "not_found"
    # the same record again is unchanged: answered synced at once
    got = await desk.enter("trade_union", "2026-12", row, "a")
    assert got["records"][0]["status"] == "unchanged"
    assert pub.published[-1].type == "difficulty.status.trade_union"
    assert pub.published[-1].payload["status"] == "synced"
    pending = await desk.pending("first")
    assert pending["records"] == []
    assert desk.audit is not None and len(desk.audit.rows) == 2  # type: ignore[attr-defined]


async def test_unknown_department_entry_is_refused_whole(desk: DifficultyDesk) -> None:
    got = await desk.enter("police", "2026-11", {"change": "增加"}, "a")
    assert not got["accepted"] and got["refused"][0]["field"] == "department"


async def test_resend_a_month_or_one_person_to_the_department(desk: DifficultyDesk) -> None:
    """补发 (issue 11): the final statuses again, salted by the resend id; pending skipped."""
    rows = make_records(random.Random(6), "civil_affairs", 3)
    got = await desk.receive("civil_affairs", "2026-11", rows, channel="api", list_ref="R1",
                             actor="x")
    ids = [r["record_id"] for r in got["records"]]
    for actor in (A, B):
        await desk.review(ids[:1], approve=True, reason="", actor=actor)
    await desk.review(ids[1:2], approve=False, reason="材料不全", actor=A)
    assert desk.store is not None
    await desk.store.set_status(ids[0], "synced", expect=("approved",))
    pub = desk.publisher
    assert isinstance(pub, FakePublisher)
    before = len(pub.published)
    out = await desk.resend("civil_affairs", "2026-11", id_number=None, reason="丢失",
                            actor=A, resend_id="resend-0001")
    sent = pub.published[before:]
    assert [m.type for m in sent] == ["difficulty.status.civil_affairs"] * 2
    assert {m.payload["record_id"]: m.payload["status"] for m in sent} == {
        ids[0]: "synced", ids[1]: "refused"}
    assert all(m.payload["resend_id"] == "resend-0001" and m.payload["list_ref"] == "R1"
               for m in sent)
    assert out["skipped"] == [{"record_id": ids[2], "status": "first_review"}]
    # the same resend again is the same delivery (same keys); another one is new
    again = await desk.resend("civil_affairs", "2026-11", id_number=None, reason="丢失",
                              actor=A, resend_id="resend-0001")
    assert [m.idempotency_key for m in pub.published[-2:]] == [m.idempotency_key for m in sent]
    assert again["resend_id"] == "resend-0001"
    other = await desk.resend("civil_affairs", "2026-11", id_number=rows[0]["id_number"],
                              reason="丢失", actor=A)
    assert [s["record_id"] for s in other["sent"]] == [ids[0]]
    assert pub.published[-1].idempotency_key != sent[0].idempotency_key
    # nothing for another month or department; every resend audited, the ID masked
    assert (await desk.resend("civil_affairs", "2026-10", id_number=None, reason="r",
                              actor=A))["found"] == 0
    assert (await desk.resend("veterans", "2026-11", id_number=None, reason="r",
                              actor=A))["found"] == 0
    rows_ = desk.audit.rows  # type: ignore[union-attr]
    resends = [r for r in rows_ if r[2] == "difficulty.resend"]
    assert len(resends) == 5
    assert rows[0]["id_number"] not in resends[2][3] and "*" in resends[2][3]


async def test_person_recognition_for_the_platform_is_masked(desk: DifficultyDesk) -> None:
    """人员认定 (1497): recognised while an identity is in force, which, since when."""
    row = make_records(random.Random(7), "civil_affairs", 1)[0] | {
        "identity": "01", "start_date": "2026-10-01", "name": "王芳芳"}
    person = row["id_number"]
    got = await desk.person(person)
    assert got["recognised"] is False and got["identities"] == [] and got["since"] is None
    rid = (await desk.enter("civil_affairs", "2026-10", row, "a"))["records"][0]["record_id"]
    for actor in (A, B):
        await desk.review([rid], approve=True, reason="", actor=actor)
    got = await desk.person(person)
    assert got["recognised"] is True and got["since"] == "2026-10-01"
    assert got["identities"] == [{"identity": "01", "label": "低保",
                                  "department": "civil_affairs", "start_date": "2026-10-01",
                                  "end_date": None, "active": True, "primary": True}]
    assert person not in str(got) and got["name"] == "王**"
    assert got["id_number"].startswith(person[:6]) and "*" in got["id_number"]
    assert row["phone"] not in str(got)
    rid = (await desk.enter("civil_affairs", "2026-11", row | {
        "change": "减少", "end_date": "2026-11-10"}, "a"))["records"][0]["record_id"]
    for actor in (A, B):
        await desk.review([rid], approve=True, reason="", actor=actor)
    got = await desk.person(person)
    assert got["recognised"] is False and got["since"] is None
    assert got["identities"][0]["active"] is False
    assert got["identities"][0]["end_date"] == "2026-11-10"


class _Sunshine:
    """阳光惠民 in memory: pages taken; ``fail`` pages refused first."""

    def __init__(self, fail: int = 0) -> None:
        self.pages: list[tuple[dict[str, object], str]] = []
        self.fail = fail

    async def push_sunshine(self, page: dict[str, object], *, serial: str) -> None:
        if self.fail:
            self.fail -= 1
            from contracts.errors import PartnerUnavailable
            raise PartnerUnavailable("HTTP 503", partner="sunshine")
        self.pages.append((page, serial))


async def test_sunshine_pushes_the_day_once_and_the_rest_after_a_failure(
        desk: DifficultyDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    """阳光惠民 (1497): identities in force, masked, paged; a day's second run pushes
    nothing; a failed page is logged as an alert and pushed by the next run."""
    from datetime import date

    import services.difficulty as sd

    monkeypatch.setattr(sd, "SUNSHINE_PAGE", 2)
    rows = make_records(random.Random(8), "civil_affairs", 3)
    got = await desk.receive("civil_affairs", "2026-11", rows, channel="api", list_ref="S",
                             actor="x")
    ids = [r["record_id"] for r in got["records"]]
    for actor in (A, B):
        await desk.review(ids, approve=True, reason="", actor=actor)
    sun = _Sunshine(fail=1)
    d = sd.DifficultyDesk(desk.store, desk.publisher, desk.audit, sun)  # type: ignore[arg-type]
    day = date(2026, 11, 30)
    out = await d.run_sunshine(A, day=day)
    assert (out["pushed"], out["failed"], out["complete"]) == (0, 2, False)
    failed = await desk.store.sync_log(status="failed")
    assert len(failed) == 2 and all(f["target"] == "sunshine" and f["alert"] for f in failed)
    out = await d.run_sunshine(A, day=day)
    assert (out["pushed"], out["pages"], out["complete"]) == (3, 2, True)
    pushed = [r for p, _ in sun.pages for r in p["rows"]]  # type: ignore[attr-defined]
    assert sorted(r["ref"] for r in pushed) == sorted(ids)
    assert all("*" in r["id_number"] and "*" in r["name"] and "phone" not in r
               for r in pushed)
    assert not any(x["id_number"] in str(sun.pages) for x in rows)
    again = await d.run_sunshine(A, day=day)
    assert (again["pushed"], again["pages"]) == (0, 0) and len(sun.pages) == 2
    nxt = await d.run_sunshine(A, day=date(2026, 12, 1))  # the next day: the table again
    assert nxt["pushed"] == 3 and len({s for _, s in sun.pages}) == 4
    audit = [r for r in desk.audit.rows if r[2] == "difficulty.sunshine"]  # type: ignore[union-attr]
    assert [r[5] for r in audit] == ["failed", "ok", "ok", "ok"]
    # the scheduled run of a day already pushed: nothing pushed, no audit line
    monkeypatch.setattr(sd, "today_beijing", lambda: day)
    await d.sunshine_tick()
    assert len(sun.pages) == 4
    assert len([r for r in desk.audit.rows if r[2] == "difficulty.sunshine"]) == 4  # type: ignore[union-attr]
