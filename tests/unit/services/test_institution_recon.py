"""F14 desk: a differing amount is a held ``amount_differs`` case that only a caseworker's
``correct`` resolves (audited, one message carrying the core's row, twice = once); the
hold before the rule reverses an institution-only settlement is the setting
``institution_recon_hold_minutes`` (a shorter one is honoured, at the door's desk and on
the lane)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from config.settings import ConfigError, load_settings
from contracts.errors import PartnerUnavailable
from contracts.institution_recon import DayTotals, DetailRow, totals_of
from contracts.national import now_cst
from routes.institution_recon import HOLD_MINUTES, hold_minutes_of
from services.institution_recon import ReconDesk
from storage.audit import AuditLog
from storage.institution_recon import InstitutionReconStore
from tests.support.fakes import FakePublisher
from tests.support.migrations import engine_copy

CODE = "H32010200001"


def _row(sid: str, fee: str, setl_time: str, **kw: Any) -> DetailRow:
    f = Decimal(fee)
    return DetailRow(setl_id=sid, mdtrt_id="M" + sid, psn_no="P" + sid, medfee_sumamt=f,
                     fund_pay_sumamt=f - Decimal("30.00"), acct_pay=Decimal("10.00"),
                     cash_payamt=Decimal("20.00"), setl_time=setl_time, **kw)


@dataclass
class Side:
    """One side's rows of a day (HIS or core ledger), in memory."""

    rows: dict[date, list[DetailRow]] = field(default_factory=dict)
    done: list[tuple[str, str, str]] = field(default_factory=list)

    async def totals(self, code: str, day: date) -> DayTotals:
        return totals_of(code, day, self.rows.get(day, []))

    async def detail(self, code: str, day: date) -> list[DetailRow]:
        return list(self.rows.get(day, []))

    async def reverse(self, code: str, row: dict[str, Any], *, serial: str) -> None:
        self.done.append(("reverse", row["setl_id"], serial))

    async def complete(self, code: str, row: dict[str, Any], *, serial: str) -> None:
        self.done.append(("complete", row["setl_id"], serial))

    async def aclose(self) -> None:
        return None


@dataclass
class Desk:
    desk: ReconDesk
    his: Side
    core: Side
    publisher: FakePublisher
    audit: AuditLog


@pytest.fixture
async def parts(template_db: Path, tmp_path: Path) -> AsyncIterator[Desk]:
    async with engine_copy(template_db, tmp_path) as engine:
        his, core, pub, audit = Side(), Side(), FakePublisher(), AuditLog(engine)
        yield Desk(ReconDesk(InstitutionReconStore(engine), his, core, pub, audit), his,
                   core, pub, audit)


async def test_a_differing_amount_is_held_and_only_a_caseworker_corrects_it(
        parts: Desk) -> None:
    day = date(2026, 11, 30)
    same = _row("S1", "100.00", "2026-11-30 09:00:00")
    parts.core.rows[day] = [same, _row("S2", "50.00", "2026-11-30 09:10:00")]
    parts.his.rows[day] = [same, _row("S2", "52.00", "2026-11-30 09:10:00")]
    [run] = await parts.desk.run_day(day, [CODE])
    assert run["stmt_rslt"] == "1"
    [case] = run["cases"]
    assert (case["setl_id"], case["kind"], case["status"], case["rule"]) == (
        "S2", "amount_differs", "held", "caseworker")
    assert parts.publisher.published == []  # the rule does not resolve it
    stored = await parts.desk.store.case(case["id"])
    assert stored is not None and stored["row"]["medfee_sumamt"] == "50.00"  # the core's

    for wrong in ("reverse", "complete"):
        status, got = await parts.desk.resolve(case["id"], wrong, "x", "li", "caseworker")
        assert status == 422 and got["refused"][0]["field"] == "action"
    status, got = await parts.desk.resolve(case["id"], "correct", "core is right", "li",
                                           "caseworker")
    assert status == 202 and got["case"]["status"] == "resolving"
    status, again = await parts.desk.resolve(case["id"], "correct", "core is right", "li",
                                             "caseworker")
    assert status == 200 and again["already"] is True
    [msg] = parts.publisher.published
    assert msg.type == "recon.resolve.complete" and msg.payload["action"] == "correct"
    assert msg.payload["row"]["medfee_sumamt"] == "50.00"
    entries = await parts.audit.list(action="recon.amount_differs.correct")
    assert [e.target for e in entries] == [case["id"]]


async def test_a_one_sided_case_cannot_be_corrected(parts: Desk) -> None:
    day = date(2026, 11, 29)
    parts.core.rows[day] = [_row("S7", "80.00", "2026-11-29 09:00:00",
                                 insuplc_admdvs="110105")]  # 跨省: held for a caseworker
    [run] = await parts.desk.run_day(day, [CODE])
    [case] = run["cases"]
    assert (case["kind"], case["status"]) == ("core_only", "held")
    status, got = await parts.desk.resolve(case["id"], "correct", "x", "li", "caseworker")
    assert status == 422 and "amount_differs" in got["refused"][0]["reason"]


def test_the_hold_is_a_setting_default_30() -> None:
    assert load_settings(env={}).institution_recon_hold_minutes == HOLD_MINUTES == 30
    s = load_settings(env={"HUB_INSTITUTION_RECON_HOLD_MINUTES": "5"})
    assert s.institution_recon_hold_minutes == 5
    assert hold_minutes_of(SimpleNamespace(settings=s)) == 5
    assert hold_minutes_of(SimpleNamespace()) == HOLD_MINUTES  # a deps without settings
    with pytest.raises(ConfigError, match="institution_recon_hold_minutes"):
        load_settings(env={}, institution_recon_hold_minutes=0)


async def test_a_shorter_hold_setting_is_honoured(parts: Desk) -> None:
    at = now_cst().replace(tzinfo=None) - timedelta(minutes=10)
    day = at.date()
    parts.his.rows[day] = [_row("S9", "60.00", at.strftime("%Y-%m-%d %H:%M:%S"))]
    [run] = await parts.desk.run_day(day, [CODE])  # the default 30 minutes: it waits
    assert [(c["setl_id"], c["rule"], c["status"]) for c in run["cases"]] == [
        ("S9", "wait", "held")]
    assert parts.publisher.published == []
    s = load_settings(env={}, institution_recon_hold_minutes=5)
    parts.desk.hold_minutes = hold_minutes_of(SimpleNamespace(settings=s))
    [run] = await parts.desk.run_day(day, [CODE])  # 10 minutes old, hold 5: reversed
    assert [(c["setl_id"], c["rule"], c["status"]) for c in run["cases"]] == [
        ("S9", "reverse", "resolving")]
    [msg] = parts.publisher.published
    assert msg.payload["action"] == "reverse" and msg.payload["setl_id"] == "S9"


class FailingSide(Side):
    """A HIS that cannot be reached until ``up``."""

    up: bool = False

    async def totals(self, code: str, day: date) -> DayTotals:
        if not self.up:
            raise PartnerUnavailable("HIS down (test)", partner="institutions")
        return await super().totals(code, day)


async def test_the_daily_run_reconciles_yesterday_once_per_institution_from_its_hour(
        parts: Desk) -> None:
    from contracts.clock import BEIJING

    other = "H32010600002"
    yesterday = date(2026, 11, 30)
    parts.core.rows[yesterday] = parts.his.rows[yesterday] = [
        _row("D1", "70.00", "2026-11-30 10:00:00")]
    desk = parts.desk
    desk.codes, desk.daily_hour = (CODE, other), 6
    early = datetime(2026, 12, 1, 5, 59, tzinfo=BEIJING)
    assert await desk.daily_tick(early) == []  # before its hour: nothing
    assert await desk.store.runs(CODE, yesterday.isoformat()) == []
    his = FailingSide(rows=parts.his.rows)
    desk.institutions = his  # the HIS gateway is down at first
    at = datetime(2026, 12, 1, 6, 0, tzinfo=BEIJING)
    failed = await desk.daily_tick(at)
    assert [(r["fixmedins_code"], r["result"]) for r in failed] == [
        (CODE, "failed"), (other, "failed")]
    assert await desk.store.runs(CODE, yesterday.isoformat()) == []  # asked again later
    his.up = True
    done = await desk.daily_tick(at + timedelta(minutes=5))
    assert [(r["fixmedins_code"], r["stmt_rslt"]) for r in done] == [(CODE, "0"), (other, "0")]
    assert await desk.daily_tick(at + timedelta(minutes=10)) == []  # once per day
    runs = await desk.store.runs(CODE, yesterday.isoformat())
    assert [r["trigger"] for r in runs] == ["scheduled"]
    desk.daily_hour = None
    assert await desk.daily_tick(datetime(2026, 12, 2, 7, 0, tzinfo=BEIJING)) == []  # off


def test_the_daily_hour_is_a_setting() -> None:
    assert load_settings(env={}).institution_recon_daily_hour == 6
    assert load_settings(env={"HUB_INSTITUTION_RECON_DAILY_HOUR": "2"}
                         ).institution_recon_daily_hour == 2
    with pytest.raises(ConfigError, match="institution_recon_daily_hour"):
        load_settings(env={}, institution_recon_daily_hour=24)
