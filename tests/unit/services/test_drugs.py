"""F11 desk: the sale gate with fakes of core and the prescription center (a center answer
that failed verification refuses the sale with its reason; a center that cannot answer is
a 503 with nothing stored), payment to the ERP and supervision lanes, the ERP's refund
checked to the fen, the clock's automatic receipt after N days."""

from __future__ import annotations

import random
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.prescription.port import RxDrug, RxStatus
from config.drugs import DrugSettings
from contracts.drugs import (
    PHARMACY_ORDER,
    PHARMACY_REFUND,
    SUPERVISION_ORDER,
    SUPERVISION_REFUND,
    CatalogueDrug,
    DrugOrder,
    Eligibility,
    PaidNotice,
    PharmacyEvent,
    ReturnRequest,
    StockPush,
)
from contracts.errors import BusinessRejected, PartnerTimeout, PermanentError
from contracts.ids import make_id_number
from services.drugs import DrugDesk
from storage.drugs import DrugStore
from storage.journal import make_engine
from tests.support.fakes import FakeAudit, FakePublisher
from tests.support.ops import sqlite_url

ME = make_id_number(random.Random(5))
OTHER = make_id_number(random.Random(6))
P = "P32010200001"
OTC, RX = "XN02BEA001A001010100002", "XA10BAA017A001010101445"


@dataclass
class Core:
    eligible: Eligibility = field(default_factory=lambda: Eligibility(True, True))
    error: Exception | None = None

    async def drug_eligibility(self, id_number: str) -> Eligibility:
        if self.error:
            raise self.error
        return self.eligible

    async def drug_catalogue(self) -> list[CatalogueDrug]:
        return [CatalogueDrug(drug_code=OTC, name="对乙酰氨基酚片", rx=False),
                CatalogueDrug(drug_code=RX, name="二甲双胍片", rx=True, max_qty=4)]


@dataclass
class Center:
    """A fake ``PrescriptionPort``: one answer, or an error."""

    answer: RxStatus | None = None
    error: Exception | None = None
    asked: list[str] = field(default_factory=list)

    async def query_prescription(self, hi_rxno: str, *, rx_trace_code: str = "",
                                 fixmedins_code: str = "") -> RxStatus:
        self.asked.append(hi_rxno)
        if self.error:
            raise self.error
        return self.answer or RxStatus(hi_rxno=hi_rxno, found=False, valid=False)

    async def aclose(self) -> None:
        return None


def _valid(who: str = ME) -> RxStatus:
    return RxStatus(hi_rxno="RX1", found=True, valid=True, id_number=who,
                    expires_at=datetime.now(UTC) + timedelta(days=1),
                    drugs=(RxDrug(med_list_codg=RX, name="二甲双胍片", quantity=Decimal(2)),))


@dataclass
class Clock:
    at: datetime = field(default_factory=lambda: datetime(2026, 11, 30, 2, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
async def desk(template_db: Path, tmp_path: Path) -> AsyncIterator[DrugDesk]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    try:
        d = DrugDesk(store=DrugStore(engine), publisher=FakePublisher(), core=Core(),  # type: ignore[arg-type]
                     settings=DrugSettings(auto_receive_days=7, reconcile=False),
                     prescription=Center(), audit=FakeAudit(), now=Clock())
        await d.sync_catalogue()
        await d.stock_push(StockPush.model_validate({
            "push_id": "S-001", "pharmacy_code": P, "mode": "snapshot",
            "items": [{"drug_code": OTC, "quantity": 20}, {"drug_code": RX, "quantity": 5}]}))
        yield d
    finally:
        await engine.dispose()


def _order(no: str, lines: dict[str, int], rx: str = "") -> DrugOrder:
    items = [{"drug_code": c, "name": "药", "quantity": q, "unit_price": "3.30"}
             for c, q in lines.items()]
    body: dict[str, Any] = {"order_no": no, "pharmacy_code": P, "id_number": ME,
                            "name": "王小明", "items": items, "delivery": "pickup",
                            "total": str(Decimal("3.30") * sum(lines.values()))}
    if rx:
        body["prescription"] = {"hi_rxno": rx}
    return DrugOrder.model_validate(body)


def _fields(body: dict[str, Any]) -> dict[str, str]:
    return {x["field"]: x["reason"] for x in body["refused"]}


async def test_a_center_answer_that_fails_verification_refuses_the_sale(desk: DrugDesk) -> None:
    center: Center = desk.prescription  # type: ignore[assignment]
    center.error = PermanentError("prescription center answer refused (signature): signData "
                                  "does not verify", partner="prescription")
    got = await desk.place(_order("ORDER-0001", {RX: 2}, rx="RX1"))
    assert got.status == 422
    assert "failed verification" in _fields(got.body)["prescription"]
    assert "signData" in _fields(got.body)["prescription"]
    assert await desk.store.order("ORDER-0001") is None
    assert await desk.store.stock(P) == {OTC: 20, RX: 5}
    events = await desk.store.events("ORDER-0001")
    assert [e["event"] for e in events] == ["refused"]  # noted for supervision of sales
    center.error = PartnerTimeout("slow", partner="prescription")
    got = await desk.place(_order("ORDER-0001", {RX: 2}, rx="RX1"))
    assert got.status == 503 and await desk.store.order("ORDER-0001") is None
    center.error, center.answer = None, _valid(OTHER)
    assert "another person" in _fields((await desk.place(_order(
        "ORDER-0001", {RX: 2}, rx="RX1"))).body)["prescription"]
    center.answer = _valid()
    got = await desk.place(_order("ORDER-0001", {RX: 2, OTC: 1}, rx="RX1"))
    assert got.status == 200 and got.body["order"]["status"] == "created"
    assert await desk.store.stock(P) == {OTC: 19, RX: 3}


async def test_the_gate_asks_nobody_for_an_order_refused_on_its_face(desk: DrugDesk) -> None:
    center: Center = desk.prescription  # type: ignore[assignment]
    got = await desk.place(_order("ORDER-0002", {RX: 5}))
    assert set(_fields(got.body)) == {"items.0.quantity", "prescription"}
    assert center.asked == []
    desk.core.eligible = Eligibility(True, False, detail="参保状态暂停")  # type: ignore[attr-defined]
    got = await desk.place(_order("ORDER-0002", {OTC: 1}))
    assert "参保状态暂停" in _fields(got.body)["id_number"]
    desk.core.error = BusinessRejected("C1", "no such person")  # type: ignore[attr-defined]
    assert "no such person" in _fields((await desk.place(_order("ORDER-0002", {OTC: 1}))
                                        ).body)["id_number"]


async def test_payment_return_refund_and_automatic_receipt(desk: DrugDesk) -> None:
    pub: FakePublisher = desk.publisher  # type: ignore[assignment]
    await desk.place(_order("ORDER-0003", {OTC: 2}))
    await desk.place(_order("ORDER-0004", {OTC: 1}))
    bad = PaidNotice(pay_no="PAY3", total="6.61", fund_pay="6.61", acct_pay="0", self_pay="0")
    assert "total" in _fields((await desk.paid("ORDER-0003", bad)).body)
    for no, total in (("ORDER-0003", "6.60"), ("ORDER-0004", "3.30")):
        got = await desk.paid(no, PaidNotice(pay_no=f"PAY-{no}", total=total,
                                             fund_pay=total, acct_pay="0", self_pay="0"))
        assert got.status == 200
    assert [m.type for m in pub.published] == [PHARMACY_ORDER, SUPERVISION_ORDER] * 2
    again = await desk.paid("ORDER-0003", PaidNotice(pay_no="OTHER", total="6.60",
                                                     fund_pay="6.60", acct_pay="0",
                                                     self_pay="0"))
    assert again.status == 409
    for no in ("ORDER-0003", "ORDER-0004"):
        await desk.erp_event(PharmacyEvent(event_id=f"acc-{no}", order_no=no,
                                           event="accepted"))
    dup = await desk.erp_event(PharmacyEvent(event_id="acc-ORDER-0003", order_no="ORDER-0003",
                                             event="accepted"))
    assert dup.status == 200 and dup.body["duplicate"] is True
    # ORDER-0003 returned; a refund not to the fen is refused, the right one refunds
    assert (await desk.return_order("ORDER-0003", ReturnRequest(kind="out_of_stock"))
            ).status == 200
    assert pub.published[-1].type == PHARMACY_REFUND
    wrong = await desk.erp_event(PharmacyEvent(event_id="ref-1", order_no="ORDER-0003",
                                               event="refunded", refund_amount="6.59"))
    assert "refund_amount" in _fields(wrong.body)
    ok = await desk.erp_event(PharmacyEvent(event_id="ref-2", order_no="ORDER-0003",
                                            event="refunded", refund_amount="6.60"))
    assert ok.body["status"] == "refunded" and pub.published[-1].type == SUPERVISION_REFUND
    assert (await desk.store.stock(P))[OTC] == 19
    # ORDER-0004 shipped; the clock confirms receipt only after 7 days
    await desk.erp_event(PharmacyEvent(event_id="ship-4", order_no="ORDER-0004",
                                       event="shipped", logistics_no="SF1"))
    clock: Clock = desk.now  # type: ignore[assignment]
    clock.at += timedelta(days=6)
    assert (await desk.tick())["received"] == 0
    clock.at += timedelta(days=1, seconds=1)
    assert (await desk.tick())["received"] == 1
    row = await desk.store.order("ORDER-0004")
    assert row is not None and row["status"] == "received" and row["auto_received"]
    assert (await desk.tick())["received"] == 0
