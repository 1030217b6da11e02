"""F7 结算费用同步 lane: delivered marks the settlement's row; a refusal or retries
exhausted mark it rejected / dead with the reason (and an alert)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from contracts.assistance import settlement_message
from contracts.errors import ClientError, PartnerUnavailable
from contracts.messages import partner_serial
from routes.assistance import SETTLEMENT_ROUTE, push_settlement, settlement_failed


class _Rows:
    def __init__(self) -> None:
        self.moves: list[tuple[str, str, str]] = []

    async def set_sync(self, ref: str, status: str, *, expect: Any, reason: str = "") -> bool:
        self.moves.append((ref, status, reason))
        return True


class _Platform:
    def __init__(self) -> None:
        self.pushed: list[tuple[dict[str, Any], str]] = []

    async def push_settlement(self, record: dict[str, Any], *, serial: str) -> None:
        self.pushed.append((record, serial))


class _Deps:
    def __init__(self) -> None:
        self.difficulty_partners = _Platform()
        self.assistance = _Rows()


MSG = settlement_message({"ref": "r1", "setl_id": "S1", "id_number": "x", "month": "202611",
                          "identity": "01"})


async def test_delivered_marks_the_row_and_carries_the_serial() -> None:
    deps = _Deps()
    out = await push_settlement(MSG, deps)  # type: ignore[arg-type]
    assert out.txn is not None and out.txn.status == "delivered"
    assert deps.difficulty_partners.pushed == [(MSG.payload, partner_serial(MSG))]
    assert deps.assistance.moves == [("r1", "delivered", "")]
    assert SETTLEMENT_ROUTE.name == "assistance.settlements"
    assert SETTLEMENT_ROUTE.bindings == ("assistance.settlement_sync",)


async def test_failures_say_why_on_the_row(caplog: pytest.LogCaptureFixture) -> None:
    deps = _Deps()
    with caplog.at_level(logging.ERROR, logger="hub.assistance"):
        out = await settlement_failed(MSG, ClientError("HTTP 400 bad", partner="assistance"),
                                      deps)
        assert out.txn is not None and out.txn.status == "rejected"
        out = await settlement_failed(MSG, PartnerUnavailable("HTTP 503",
                                                              partner="assistance"), deps)
        assert out.txn is not None and out.txn.status == "dead"
    assert [m[1] for m in deps.assistance.moves] == ["rejected", "dead"]
    assert "HTTP 400" in deps.assistance.moves[0][2]
    assert sum("ALERT 提醒预警" in r.message for r in caplog.records) == 2
