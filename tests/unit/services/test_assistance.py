"""F7 医疗救助平台 desk: 医疗费用查询 only for recipients and inside their periods, core's
settlement events recorded and published once, a month's run resumable and once, core's
header checked, 阳光惠民's 救助费用 and 机构 tables once a day."""

from __future__ import annotations

import random
import shutil
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from contracts.assistance import (
    ExpenseQuery,
    Institution,
    Settlement,
    Totals,
    settlement_to_wire,
)
from contracts.errors import PartnerUnavailable, ValidationFailed
from contracts.ids import make_id_number
from contracts.national import NationalRequest, format_inf_time, make_msgid, now_cst
from services.assistance import AssistanceDesk, Refused
from services.audit import Caller
from simulators.assistance import CoreSettlements, make_settlement
from storage.assistance import AssistanceStore
from storage.difficulty import DifficultyIdentityRow
from storage.journal import make_engine
from storage.times import utc_now
from tests.support.fakes import FakeAudit, FakePublisher
from tests.support.ops import sqlite_url

A = Caller("a", "caseworker")
IDS = [make_id_number(random.Random(60 + i)) for i in range(3)]


class _Core:
    """Core's settlements in memory (``CoreSettlements``); ``fail`` raises; ``off`` makes
    H4003's header one fen off."""

    def __init__(self) -> None:
        self.book = CoreSettlements()
        self.fail: Exception | None = None
        self.off = False
        self.calls: list[str] = []

    async def expenses(self, id_number: str, start: date, end: date) -> list[Settlement]:
        self.calls.append("H4002")
        if self.fail:
            raise self.fail
        return self.book.between(id_number, start, end)

    async def month_settlements(self, month: str, id_numbers: Sequence[str]
                                ) -> tuple[Totals, list[Settlement]]:
        self.calls.append("H4003")
        rows = [s for n in id_numbers for s in self.book.of(n, month)]
        t = Totals.of(rows)
        if self.off:
            t = Totals(t.count, t.medfee_total, t.fund_pay, t.serious_illness_pay,
                       t.assistance_pay + 1, t.self_pay)
        return t, rows

    async def institutions(self) -> list[Institution]:
        return [Institution(i["fixmedins_code"], i["fixmedins_name"])
                for i in self.book.institutions]


class _Platform:
    """The platform and 阳光惠民: pages taken per path; ``fail`` pages refused first."""

    def __init__(self) -> None:
        self.pages: list[tuple[str, dict[str, Any], str]] = []
        self.fail = 0

    async def _take(self, path: str, page: dict[str, Any], serial: str) -> None:
        if self.fail:
            self.fail -= 1
            raise PartnerUnavailable("HTTP 503", partner="assistance")
        self.pages.append((path, page, serial))

    async def push_settlement_data(self, page: dict[str, Any], *, serial: str) -> None:
        await self._take("data", page, serial)

    async def push_sunshine(self, page: dict[str, Any], *, serial: str,
                            table: str = "recipients") -> None:
        await self._take(table, page, serial)

    def rows(self, path: str) -> list[dict[str, Any]]:
        return [r for p, page, _ in self.pages if p == path for r in page["rows"]]


@pytest.fixture
async def desk(template_db: Path, tmp_path: Path) -> AsyncIterator[AssistanceDesk]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    async with engine.begin() as conn:
        await conn.execute(insert(DifficultyIdentityRow), [
            {"id_number": n, "identity": "01", "department": "civil_affairs", "name": "王五",
             "start_date": date(2026, 9, 1), "end_date": None, "active": True,
             "is_primary": True, "record_id": f"r{i}", "updated_at": utc_now()}
            for i, n in enumerate(IDS[:2])])
    try:
        yield AssistanceDesk(AssistanceStore(engine), _Core(), FakePublisher(),
                             _Platform(), FakeAudit())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def _core(d: AssistanceDesk) -> _Core:
    assert isinstance(d.core, _Core)
    return d.core


def _platform(d: AssistanceDesk) -> _Platform:
    assert isinstance(d.partners, _Platform)
    return d.partners


async def test_expenses_only_for_recipients_and_inside_their_periods(
        desk: AssistanceDesk) -> None:
    core = _core(desk)
    q = ExpenseQuery(id_number=IDS[0], start_date=date(2026, 8, 1),
                     end_date=date(2026, 11, 30))
    early = make_settlement(IDS[0], datetime(2026, 8, 20, 9), 5_000, setl_id="EARLY",
                            name="王五")
    core.book.added["EARLY"] = early
    got = await desk.expenses(q)
    assert got["assistance_periods"] == [{"start_date": "2026-09-01",
                                          "end_date": "2026-11-30"}]
    assert "EARLY" not in [e["setl_id"] for e in got["expenses"]]  # before the identity
    want = core.book.between(IDS[0], date(2026, 9, 1), date(2026, 11, 30))
    assert [e["setl_id"] for e in got["expenses"]] == [s.setl_id for s in want]
    assert got["totals"] == Totals.of(want).as_dict()
    assert IDS[0] not in str(got) and got["name"] == "王*"
    with pytest.raises(Refused) as no:
        await desk.expenses(ExpenseQuery(id_number=IDS[2], start_date=date(2026, 9, 1),
                                         end_date=date(2026, 9, 30)))
    assert no.value.status == 404 and no.value.field == "id_number"
    with pytest.raises(Refused) as out:
        await desk.expenses(ExpenseQuery(id_number=IDS[0], start_date=date(2026, 1, 1),
                                         end_date=date(2026, 8, 31)))
    assert out.value.status == 403
    assert core.calls == ["H4002"]  # refusals never ask core


def _event(s: Settlement, seq: int = 0) -> bytes:
    now = now_cst()
    return NationalRequest(infno="H4005", msgid=make_msgid("NJYBCORE0001", now, seq),
                           inf_time=format_inf_time(now), input={
                               "data": settlement_to_wire(s)}).model_dump_json().encode()


async def test_a_settlement_event_is_published_once(desk: AssistanceDesk) -> None:
    s = make_settlement(IDS[0], datetime(2026, 11, 2, 9), 12_345, setl_id="EV1", name="王五")
    got = await desk.receive_event(_event(s))
    assert got["status"] == "queued" and not got["duplicate"] and got["identity"] == "01"
    again = await desk.receive_event(_event(s, 1))
    assert again["duplicate"] and again["status"] == "queued"
    published = desk.publisher.published  # type: ignore[attr-defined]
    assert len(published) == 1 and published[0].payload["id_number"] == IDS[0]
    assert published[0].payload["assistance_pay"] == s.amounts()["assistance_pay"]
    stranger = make_settlement(IDS[2], datetime(2026, 11, 2, 9), 100, setl_id="X", name="甲")
    with pytest.raises(Refused) as no:
        await desk.receive_event(_event(stranger))
    assert no.value.code == "NOT_RECIPIENT" and no.value.field == "input.data.certno"
    before = make_settlement(IDS[0], datetime(2026, 8, 2, 9), 100, setl_id="B", name="王五")
    with pytest.raises(Refused):
        await desk.receive_event(_event(before))
    body = _event(s).replace(settlement_to_wire(s)["psn_pay"].encode(), b"1.001")
    with pytest.raises(ValidationFailed) as bad:
        await desk.receive_event(body)
    assert bad.value.field == "input.data.psn_pay"
    assert len(published) == 1


async def test_a_month_is_resumable_and_sent_once(desk: AssistanceDesk,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import services.assistance as sa

    monkeypatch.setattr(sa, "DATA_PAGE", 1)
    core, platform = _core(desk), _platform(desk)
    for i in range(3):  # three settlements of the month, whatever the derived ones are
        core.book.added[f"M{i}"] = make_settlement(IDS[i % 2], datetime(2026, 10, 3 + i, 9),
                                                   1_000 + i, setl_id=f"M{i}", name="王五")
    core.book.added["OTHER"] = make_settlement(IDS[2], datetime(2026, 10, 3, 9), 10,
                                               setl_id="OTHER", name="甲")
    want = [s for n in IDS[:2] for s in core.book.of(n, "202610")]
    platform.fail = 1
    out = await desk.run_month("202610", A, today=date(2026, 11, 30))
    assert not out["complete"] and out["pushed"] == 0 and "503" in out["error"]
    out = await desk.run_month("202610", A, today=date(2026, 11, 30))
    assert out["complete"] and out["pushed"] == len(want) == out["rows"]
    again = await desk.run_month("202610", A, today=date(2026, 11, 30))
    assert again["pushed"] == 0 and again["complete"]
    rows = platform.rows("data")
    assert sorted(r["setl_id"] for r in rows) == sorted(s.setl_id for s in want)
    assert "OTHER" not in str(rows)  # not a recipient: not asked about
    header = platform.pages[-1][1]["header"]
    assert header == Totals.of(want).as_dict()
    serials = [s for p, _, s in platform.pages if p == "data"]
    assert len(serials) == len(set(serials))
    runs = await desk.runs()
    assert runs[0]["runs"] == 3 and runs[0]["status"] == "done"
    audit = [r for r in desk.audit.rows if r[2] == "assistance.settlement_run"]  # type: ignore[union-attr]
    assert [r[5] for r in audit] == ["failed", "ok", "ok"]
    # core's header one fen off: the run fails, nothing of it is recorded
    core.off = True
    core.book.added["N1"] = make_settlement(IDS[0], datetime(2026, 11, 3, 9), 500,
                                            setl_id="N1", name="王五")
    with pytest.raises(ValidationFailed, match="header"):
        await desk.run_month("202611", A, today=date(2026, 11, 30))
    assert await desk.store.settlements(month="202611") == []
    assert (await desk.store.run("202611"))["status"] == "failed"  # type: ignore[index]
    with pytest.raises(ValidationFailed, match="month"):
        await desk.run_month("202701", A, today=date(2026, 11, 30))


async def test_sunshine_fees_and_institutions_once_a_day(desk: AssistanceDesk) -> None:
    core, platform = _core(desk), _platform(desk)
    s = make_settlement(IDS[0], datetime(2026, 11, 2, 9), 12_345, setl_id="EV1", name="王五")
    await desk.receive_event(_event(s))
    day = date(2026, 11, 30)
    platform.fail = 1
    out = await desk.sunshine_fees(day)
    assert out["failed"] == 1 and out["pushed"] == 0
    out = await desk.sunshine_fees(day)
    assert out["pushed"] == 1 and (await desk.sunshine_fees(day))["pushed"] == 0
    fees = platform.rows("fees")
    assert len(fees) == 1 and IDS[0] not in str(fees) and fees[0]["settled_on"] == "2026-11-02"
    assert fees[0]["label"] == "低保" and fees[0]["department"] == "民政局"
    got = await desk.sunshine_institutions(day)
    assert got["pushed"] == len(core.book.institutions)
    assert (await desk.sunshine_institutions(day))["pushed"] == 0
    assert (await desk.sunshine_institutions(date(2026, 12, 1)))["pushed"] == len(
        core.book.institutions)
    assert (await desk.sunshine_fees(date(2027, 1, 1)))["pushed"] == 0  # a new year
