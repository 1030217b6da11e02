"""F7 lanes with fakes: core's answer decides what the department hears; a failure is an
alert in the 同步日志; the platform and the departments get signed pushes by serial."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from contracts.difficulty import CORE_SYNC, core_message, platform_message, status_message
from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.messages import partner_serial
from routes.difficulty import (
    CORE_ROUTE,
    DIFFICULTY_ROUTES,
    core_failed,
    platform_failed,
    push_status,
    push_to_platform,
    sync_to_core,
)
from tests.support.fakes import FakeCore

ID = "32010219880928997X"
PAYLOAD = {"record_id": "r1", "list_ref": "L1", "row": 3, "department": "veterans",
           "change": "add", "action": "enter", "identity": "08", "id_number": ID,
           "name": "王五", "start_date": "2026-11-01", "end_date": "", "primary": True}


@dataclass
class FakeStore:
    statuses: list[tuple[str, str, tuple[str, ...], str | None]] = field(default_factory=list)
    platform: list[tuple[str, str]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    async def set_status(self, record_id: str, status: str, *, expect: tuple[str, ...],
                         reason: str | None = None) -> bool:
        self.statuses.append((record_id, status, expect, reason))
        return True

    async def set_platform(self, record_id: str, status: str) -> None:
        self.platform.append((record_id, status))

    async def log_sync(self, record_id: str, *, target: str, action: str, id_number: str,
                       identity: str, ok: bool, reason: str = "") -> None:
        self.log.append({"record_id": record_id, "target": target, "ok": ok, "reason": reason})


@dataclass
class FakePartners:
    pushed: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    async def push_assistance(self, record: dict[str, Any], *, serial: str) -> None:
        self.pushed.append(("assistance", record, serial))

    async def push_status(self, department: str, status: dict[str, Any], *,
                          serial: str) -> None:
        self.pushed.append((department, status, serial))

    async def aclose(self) -> None:
        return None


@dataclass
class D:
    core: FakeCore = field(default_factory=FakeCore)
    difficulty: FakeStore = field(default_factory=FakeStore)
    difficulty_partners: FakePartners = field(default_factory=FakePartners)


async def test_core_sync_marks_synced_and_tells_the_department() -> None:
    d, msg = D(), core_message(PAYLOAD)
    out = await sync_to_core(msg, d)  # type: ignore[arg-type]
    assert d.core.difficulty == [(PAYLOAD, partner_serial(msg))]
    assert d.difficulty.statuses[0][:2] == ("r1", "synced")
    assert d.difficulty.log == [{"record_id": "r1", "target": "core", "ok": True, "reason": ""}]
    [status] = out.outputs
    assert status.type == "difficulty.status.veterans"
    assert status.payload["status"] == "synced" and status.payload["row"] == 3
    assert out.txn is not None and out.txn.status == "delivered"
    assert ID not in str(out.detail)


async def test_a_case_choice_tells_no_department_and_keeps_the_record() -> None:
    d = D()
    out = await sync_to_core(core_message(PAYLOAD | {"case_id": "c1"}, salt="c1"), d)  # type: ignore[arg-type]
    assert out.outputs == () and d.difficulty.statuses == []
    out = await sync_to_core(core_message(PAYLOAD | {"department": "bureau"}), d)  # type: ignore[arg-type]
    assert out.outputs == ()


@pytest.mark.parametrize("exc,status", [
    (BusinessRejected("C401", "人员未参保", partner="core"), "rejected"),
    (PartnerUnavailable("core answered HTTP 503", partner="core"), "dead")])
async def test_a_failed_core_sync_alerts_logs_and_refuses(
        exc: Exception, status: str, caplog: pytest.LogCaptureFixture) -> None:
    d = D()
    with caplog.at_level(logging.ERROR, logger="hub.difficulty"):
        out = await core_failed(core_message(PAYLOAD), exc, d)  # type: ignore[arg-type]
    assert "提醒预警" in caplog.text and ID not in caplog.text
    assert d.difficulty.statuses[0][1] == "sync_failed"
    assert d.difficulty.log[0]["ok"] is False
    [told] = out.outputs
    assert told.payload["status"] == "refused" and told.payload["reason"]
    assert out.txn is not None and out.txn.status == status


async def test_platform_push_and_its_failure() -> None:
    d, msg = D(), platform_message(PAYLOAD)
    out = await push_to_platform(msg, d)  # type: ignore[arg-type]
    assert d.difficulty_partners.pushed == [("assistance", PAYLOAD, partner_serial(msg))]
    assert d.difficulty.platform == [("r1", "delivered")] and out.outputs == ()
    out = await platform_failed(msg, PartnerUnavailable("x", partner="assistance"), d)  # type: ignore[arg-type]
    assert d.difficulty.platform[-1] == ("r1", "failed") and not d.difficulty.log[-1]["ok"]


async def test_status_goes_to_its_department() -> None:
    d = D()
    msg = status_message("veterans", {"record_id": "r1", "status": "synced"})
    await push_status(msg, d)  # type: ignore[arg-type]
    assert d.difficulty_partners.pushed[0][0] == "veterans"


def test_lanes() -> None:
    assert CORE_ROUTE.bindings == (CORE_SYNC,) and CORE_ROUTE.partner == "core"
    assert {r.partner for r in DIFFICULTY_ROUTES} == {
        "assistance", "core", "difficulty_civil_affairs", "difficulty_trade_union",
        "difficulty_veterans", "difficulty_agriculture"}
    assert all(r.on_failure for r in DIFFICULTY_ROUTES[:2])
