"""F8 runs (``services.warnings``) with fakes and a real SQLite store: a month run twice
publishes once; a stopped run resumes; a year without lines is refused; 补发 is salted."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from config.warnings import WarningSettings
from contracts.errors import ValidationFailed
from contracts.warnings import SelfPaid
from services.warnings import WarningRuns
from storage.journal import make_engine
from storage.warnings import WarningStore
from tests.support.fakes import FakeCore, FakePublisher
from tests.support.ops import sqlite_url

S = WarningSettings()


def people() -> list[SelfPaid]:
    lines = S.lines(2026)
    assert lines is not None
    return [SelfPaid(id_number="32010219880928997X", name="王小明", rural=False,
                     insurance="employee", self_paid=lines.urban_income + 1),
            SelfPaid(id_number="320102198809289981", name="李四", rural=True,
                     insurance="none", self_paid=lines.rural_dibao + 1,
                     categories=("former_registered",)),
            SelfPaid(id_number="320102198809289990", name="张三", rural=True,
                     insurance="resident", self_paid=Decimal(100))]


@pytest.fixture
async def runs(template_db: Path, tmp_path: Path) -> AsyncIterator[WarningRuns]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    core = FakeCore()
    core.self_paid = people()  # type: ignore[attr-defined]
    try:
        yield WarningRuns(store=WarningStore(engine), core=core, publisher=FakePublisher(),
                          settings=S)
    finally:
        await engine.dispose()


async def test_a_month_run_twice_publishes_once(runs: WarningRuns) -> None:
    first = await runs.run("202605", "ops")
    # 王小明: 民政, 工会; 李四: 民政, 农业农村; 张三: nobody
    assert first == {"month": "202605", "people": 3, "warnings": 4, "new": 4, "published": 4}
    pub = runs.publisher
    assert isinstance(pub, FakePublisher)
    assert sorted(m.type for m in pub.published) == [
        "warnings.agriculture", "warnings.civil_affairs", "warnings.civil_affairs",
        "warnings.union"]
    second = await runs.run("202605", "ops")
    assert second["published"] == 0 and second["new"] == 0 and len(pub.published) == 4
    status = await runs.status("202605", detail=True)
    assert status is not None and status["run"]["runs"] == 2 and status["total"] == 4
    assert "王小明" not in str(status) and "32010219880928997X" not in str(status)


async def test_a_run_stopped_before_publishing_resumes(runs: WarningRuns) -> None:
    pub = runs.publisher
    assert isinstance(pub, FakePublisher)
    pub.fail = True
    with pytest.raises(ConnectionError):
        await runs.run("202605", "ops")
    run = await runs.store.run("202605")
    assert run is not None and run["status"] == "failed"
    pub.fail = None
    again = await runs.run("202605", "ops")
    assert again["new"] == 0 and again["published"] == 4
    assert len({m.idempotency_key for m in pub.published}) == 4


async def test_a_year_without_lines_is_refused(runs: WarningRuns) -> None:
    with pytest.raises(ValidationFailed, match="no warning lines for 2031"):
        await runs.run("203101", "ops")


async def test_a_resend_is_salted_under_the_same_serial(runs: WarningRuns) -> None:
    await runs.run("202605", "ops")
    pub = runs.publisher
    assert isinstance(pub, FakePublisher)
    first = {m.payload["serial"]: m for m in pub.published if m.type == "warnings.union"}
    out = await runs.resend("202605", "union", "cw")
    assert out["resent"] == 1
    again = pub.published[-1]
    assert again.payload["serial"] in first
    assert again.idempotency_key != first[again.payload["serial"]].idempotency_key
    assert again.payload["resend"] == 1
    with pytest.raises(ValidationFailed):
        await runs.resend("202605", "tax", "cw")
