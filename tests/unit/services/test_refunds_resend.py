"""F10 补发 (issue 12): an order's current final status again to core (H7101), salted by the
resend id (its retry is the same delivery); an order on its way is 409 and nothing goes to
finance; 404 unknown; audited."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from contracts.finance import CORE_STATUS, RefundOrder, core_status_message
from contracts.messages import partner_serial
from services.audit import Caller
from services.refunds import RefundDesk
from simulators.finance import make_order
from storage.refunds import RefundStore
from tests.support.fakes import FakeAudit, FakePublisher
from tests.support.migrations import engine_copy

A = Caller("a", "caseworker")


def _order(no: str) -> RefundOrder:
    return RefundOrder.model_validate(make_order(random.Random(5), no, amount="300.01"))


@pytest.fixture
async def desk(template_db: Path, tmp_path: Path) -> AsyncIterator[RefundDesk]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield RefundDesk(store=RefundStore(engine), publisher=FakePublisher(),
                         audit=FakeAudit())  # type: ignore[arg-type]


async def test_a_final_status_is_resent_to_core_salted(desk: RefundDesk) -> None:
    await desk.store.add_order(_order("TF-R-1"))
    await desk.store.move("TF-R-1", expect=("received",), status="refunded",
                          refunded_on=date(2026, 11, 20), finance_no="FN-1",
                          paid_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    code, got = await desk.resend("TF-R-1", reason="核心未收到", actor=A,
                                  resend_id="resend-0001")
    assert code == 200 and got["status"] == "refunded" and got["sent"] == ["core"], got
    pub = desk.publisher
    assert isinstance(pub, FakePublisher)
    (msg,) = pub.published
    assert msg.type == CORE_STATUS and msg.target == "core"
    assert msg.payload | {"at": ""} == {
        "order_no": "TF-R-1", "version": 1, "status": "refunded", "reason_field": "",
        "reason": "", "amount": "300.01", "finance_no": "FN-1", "at": "",
        "resend_id": "resend-0001"}
    assert msg.payload["at"].startswith("2026-11-20T02:00")
    # not the decision's key (a new delivery); the same resend id again: the same one
    first = core_status_message("TF-R-1", 1, "refunded")
    assert partner_serial(msg) != partner_serial(first)
    await desk.resend("TF-R-1", reason="核心未收到", actor=A, resend_id="resend-0001")
    assert pub.published[1].idempotency_key == msg.idempotency_key
    await desk.resend("TF-R-1", reason="again", actor=A)
    assert pub.published[2].idempotency_key != msg.idempotency_key
    rows = [r for r in desk.audit.rows if r[2] == "refund.resend"]  # type: ignore[union-attr]
    assert [r[5] for r in rows] == ["accepted"] * 3 and rows[0][3] == "TF-R-1"
    assert rows[0][4]["resend_id"] == "resend-0001" and rows[0][4]["version"] == 1


async def test_an_order_on_its_way_or_unknown_is_refused_and_finance_never_asked(
        desk: RefundDesk) -> None:
    code, got = await desk.resend("NOPE-1", reason="r", actor=A)
    assert code == 404 and got["refused"][0]["field"] == "order_no"
    await desk.store.add_order(_order("TF-R-2"))
    for status in ("received", "queued", "sent", "withdrawing"):
        if status != "received":
            await desk.store.move("TF-R-2", expect=("received", "queued", "sent"),
                                  status=status)
        code, got = await desk.resend("TF-R-2", reason="r", actor=A)
        assert code == 409 and f"is {status}, not final" in got["refused"][0]["reason"]
    pub = desk.publisher
    assert isinstance(pub, FakePublisher) and pub.published == []
    # failed (finance refused the account): final for its version, core hears it again
    await desk.store.add_order(_order("TF-R-3"))
    await desk.store.move("TF-R-3", expect=("received",), status="failed",
                          reason_field="payee", reason="收款账号校验失败")
    code, got = await desk.resend("TF-R-3", reason="r", actor=A)
    assert code == 200 and pub.published[-1].payload["reason_field"] == "payee"
    assert {m.target for m in pub.published} == {"core"}  # never finance
    outcomes = [r[5] for r in desk.audit.rows if r[2] == "refund.resend"]  # type: ignore[union-attr]
    assert outcomes == ["not_found"] + ["conflict"] * 4 + ["accepted"]
