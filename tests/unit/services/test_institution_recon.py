"""F14 desk: a differing amount is a held ``amount_differs`` case that only a caseworker's
``correct`` resolves (audited, one message carrying the core's row, twice = once); the
hold before the rule reverses an institution-only settlement is the setting
``institution_recon_hold_minutes`` (a shorter one is honoured, at the door's desk and on
the lane)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from config.settings import ConfigError, load_settings
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
