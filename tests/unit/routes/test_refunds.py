"""F10 lane handlers with a real store and fake partners: 到账 refuses with field and reason,
an order withdrawn meanwhile is never sent, finance's failure reaches core."""

from __future__ import annotations

import random
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.envelope import HubMessage
from contracts.errors import PartnerTimeout
from contracts.finance import (
    CORE_STATUS,
    ORDER,
    OrderAnswer,
    RefundOrder,
    arrival_message,
    order_message,
    withdraw_message,
)
from routes.refunds import check_arrival, finance_failed, to_finance
from simulators.finance import make_order
from storage.journal import make_engine
from storage.refunds import RefundStore
from tests.support.ops import sqlite_url


@dataclass
class FakeTax:
    records: list[dict[str, Any]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    async def query(self, operation: str, req: BaseModel, *, serial: str) -> list[dict[str, Any]]:
        self.asked.append(operation)
        return self.records


@dataclass
class FakeFinance:
    result: str = "success"
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def submit_order(self, order: dict[str, Any], *, serial: str) -> OrderAnswer:
        self.sent.append(order)
        return OrderAnswer(order_no=order["order_no"], version=order["version"],
                           result=self.result,
                           reason="收款账号校验失败" if self.result == "failure" else "",
                           finance_no="YY1")


@dataclass
class Deps:
    refunds: RefundStore
    tax: Any = field(default_factory=FakeTax)
    core: Any = None
    finance: Any = field(default_factory=FakeFinance)


@pytest.fixture
async def deps(template_db: Path, tmp_path: Path) -> AsyncIterator[Deps]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    try:
        yield Deps(RefundStore(engine))
    finally:
        await engine.dispose()


def _order(no: str, **kw: Any) -> RefundOrder:
    return RefundOrder.model_validate(make_order(random.Random(9), no, **kw))


def _types(msgs: tuple[HubMessage, ...]) -> list[str]:
    return [m.type for m in msgs]


async def test_no_arrival_refuses_with_field_and_tells_core_and_tax(deps: Deps) -> None:
    order = _order("TF-1", source="2")
    await deps.refunds.add_order(order)
    out = await check_arrival(arrival_message(order, "c"), deps)
    assert len(out.outputs) == 2 and _types(out.outputs)[1] == CORE_STATUS
    feedback = next(m for m in out.outputs if m.type != CORE_STATUS)
    assert feedback.payload["review_result"] == "2" and feedback.payload["refund_no"]
    row = await deps.refunds.get("TF-1")
    assert row is not None and row["status"] == "refused"
    assert row["reason_field"] == "period_start" and out.txn and out.txn.status == "rejected"
    assert deps.tax.asked == ["QueryPersonArrivals"]


async def test_arrival_covering_the_amount_queues_the_order(deps: Deps) -> None:
    order = _order("TF-2", amount="100.00", unit=True)
    deps.tax.records = [{"paid_amount": "6000"}, {"paid_amount": "4000"}]
    await deps.refunds.add_order(order)
    out = await check_arrival(arrival_message(order, "c"), deps)
    assert _types(out.outputs) == [ORDER] and deps.tax.asked == ["QueryUnitArrivals"]
    deps.tax.records = [{"paid_amount": "9999"}]
    more = _order("TF-3", amount="100.00")
    await deps.refunds.add_order(more)
    await check_arrival(arrival_message(more, "c"), deps)
    row = await deps.refunds.get("TF-3")
    assert row is not None and (row["status"], row["reason_field"]) == ("refused", "amount")


async def test_an_order_withdrawn_meanwhile_is_never_sent(deps: Deps) -> None:
    order = _order("TF-4")
    await deps.refunds.add_order(order)
    await deps.refunds.move("TF-4", expect=("received",), status="queued")
    await deps.refunds.move("TF-4", expect=("queued",), status="withdrawing")
    out = await to_finance(order_message(order, 1, "c"), deps)
    assert deps.finance.sent == [] and out.detail == {"skipped": "withdrawing v1"}


async def test_finance_failure_per_order_tells_core(deps: Deps) -> None:
    order = _order("TF-5")
    deps.finance.result = "failure"
    await deps.refunds.add_order(order)
    await deps.refunds.move("TF-5", expect=("received",), status="queued")
    out = await to_finance(order_message(order, 1, "c"), deps)
    assert _types(out.outputs) == [CORE_STATUS]
    assert out.outputs[0].payload["status"] == "failed"
    row = await deps.refunds.get("TF-5")
    assert row is not None and row["status"] == "failed" and "账号" in row["reason"]


async def test_a_withdrawal_finance_never_confirmed_raises_an_alert(deps: Deps) -> None:
    order = _order("TF-6")
    await deps.refunds.add_order(order)
    await deps.refunds.move("TF-6", expect=("received",), status="withdrawing")
    out = await finance_failed(withdraw_message("TF-6", 1, "x", "c"),
                               PartnerTimeout("no answer", partner="erp_finance"), deps)
    assert out.txn is not None and out.txn.status == "dead" and out.outputs == ()
    row = await deps.refunds.get("TF-6")
    assert row is not None and row["status"] == "withdrawing" and "not confirmed" in row["alert"]
