"""services.live_state: dead letters, deadlines, failed syncs and jobs read from the stores;
a broker that cannot be reached leaves the queue gauges absent and says so in hub_up,
within the timeout; partners are found by their configured endpoints."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.topology import Names
from config.settings import load_settings
from contracts.clock import now_beijing
from kernel.metrics import HubMetrics
from retry.breaker import Breakers
from services.jobs import JobView
from services.live_state import LiveState, partner_endpoints
from storage.deadletters import DeadLetter, DeadLetterStore
from storage.difficulty import DifficultyStore
from storage.journal import make_engine
from storage.union import UnionStore
from storage.warnings import ExpenseWarningRow
from tests.support.ops import sqlite_url


@pytest.fixture
async def engine(template_db: Path, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    e = make_engine(sqlite_url(path))
    try:
        yield e
    finally:
        await e.dispose()


def _letter(route: str, status: str = "dead") -> DeadLetter:
    now = datetime.now(UTC)
    return DeadLetter(route=route, queue=f"t.q.{route}", message_id="m", correlation_id="c",
                      type="x", partner="tax", source="core", reason_code="E", reason="r",
                      attempts=3, first_seen=now, dead_at=now, headers={}, body=b"{}",
                      status=status)  # type: ignore[arg-type]


def _case(no: str, *, accept_due: str, accepted_on: str, close_due: str) -> dict[str, Any]:
    return {"id": no, "case_no": no, "year": 2025, "unit_code": "U1", "unit_name": "u",
            "urgent": False, "status": "accepted", "applicant_name": "n", "applicant_id": "i",
            "application": "{}", "content_hash": no, "complete_on": accept_due,
            "accept_due": accept_due, "accepted_on": accepted_on, "close_due": close_due}


def _warning(wid: str, month: str, status: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"id": wid, "month": month, "department": "civil_affairs", "id_number": "x",
            "name": "n", "rural": False, "self_paid": "1.00", "kinds": "k", "line": "1.00",
            "serial": wid, "payload": "{}", "status": status, "ack_no": "", "reason_code": "",
            "reason": "", "resends": 0, "created_at": now, "updated_at": now, "acked_at": None}


class FakeJobs:
    async def list(self, *, state: str | None = None, **_: Any) -> list[JobView]:
        now = datetime.now(UTC)
        if state != "running":
            return [JobView("q", "resend", "queued", "u", "caseworker", now, now)]
        return [JobView("a", "resend", "running", "u", "caseworker", now, now, total=10, done=3),
                JobView("b", "resend", "running", "u", "caseworker", now, now, total=10,
                        done=4, failed=1),
                JobView("c", "dead_letter_retry", "running", "u", "operations", now, now)]


async def test_a_refresh_reads_the_stores_and_tolerates_a_broker_that_is_down(
        engine: AsyncEngine) -> None:
    store = DeadLetterStore(engine)
    for letter in (_letter("core.sync"), _letter("core.sync"), _letter("core.sync", "archived"),
                   _letter("tax.unit", "retried"), _letter("tax.unit")):
        await store.add(letter)
    today = now_beijing().date()
    union = UnionStore(engine)
    await union.create(_case("C1", accept_due="2020-01-02", accepted_on="2020-01-01",
                             close_due="2020-02-01"))  # closure overdue
    await union.create(_case("C2", accept_due=today.isoformat(), accepted_on=today.isoformat(),
                             close_due=today.isoformat()))  # closure due today: near
    month = today.strftime("%Y%m")
    earlier = (today.replace(day=1) - timedelta(days=1)).strftime("%Y%m")
    async with engine.begin() as conn:
        await conn.execute(insert(ExpenseWarningRow).values([
            _warning("w1", earlier, "queued"), _warning("w2", earlier, "acknowledged"),
            _warning("w3", month, "pending"), _warning("w4", month, "pending")]))
    diff = DifficultyStore(engine)
    await diff.log_sync("r1", target="core", action="enter", id_number="x", identity="01",
                        ok=False, reason="core down")
    await diff.log_sync("r2", target="core", action="enter", id_number="y", identity="01",
                        ok=True)

    settings = load_settings(env={}).model_copy(
        update={"amqp_url": "amqp://guest:guest@127.0.0.1:1/"})  # nothing listens there
    breakers = Breakers()
    breakers.get("tax")
    deps = SimpleNamespace(settings=settings, names=Names("t"), breakers=breakers,
                           journal=SimpleNamespace(engine=engine), metrics=HubMetrics(),
                           jobs=FakeJobs())
    live = LiveState(timeout_s=1.0, routes=["core.sync", "tax.unit"])
    t0 = time.monotonic()
    s = await live.refresh(deps)
    assert time.monotonic() - t0 < 5
    assert s.up == {"broker": False, "database": True}
    assert s.queue_depth is None and s.queue_consumers is None
    assert s.dead_letters == {"core.sync": 2, "tax.unit": 1}
    assert s.deadlines == {("union", "near"): 1, ("union", "past"): 1,
                           ("warnings", "near"): 2, ("warnings", "past"): 1}
    assert s.sync_failures == {"difficulty": 1}
    assert s.job_progress == {"resend": 0.4}
    assert s.jobs_running == {"resend": 3, "dead_letter_retry": 1}
    assert [b["partner"] for b in s.breakers] == ["tax"]
    assert await live.refresh(deps) is s  # cached
    view = await live.view(deps)
    assert view["routes"][0] == {"route": "core.sync", "queue_depth": None, "consumers": None,
                                 "delivered_per_s": 0.0, "rates_per_s": {},
                                 "dead_letters": 2}
    await live.aclose()


def test_partner_endpoints_name_partners_channels_and_departments_as_the_lanes_do() -> None:
    s = load_settings(env={"HUB_ENV": "development"})
    ends = partner_endpoints(s)
    assert ends[s.partner("tax").endpoint] == "tax"
    assert ends[str(s.channels["hrss"].callback_url)] == "channel.hrss"
    dept = s.warnings.departments["veterans"].endpoint.rstrip("/")
    assert ends[f"{dept}/warnings/veterans"] == "dept.veterans"
    m = HubMetrics()
    m.watch_partners(ends)
    assert m.partner_of(f"{dept}/warnings/veterans") == "dept.veterans"
    assert m.partner_of(s.partner("difficulty_veterans").endpoint + "/status") == \
        "difficulty_veterans"
