"""F11 storage: migration 0014 matches the models (and goes down and up); stock held by
conditional updates (an order that would go negative is refused whole, nothing held);
stock pushes, order moves and partner events replayed once; the day's lines for 对账."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import storage.drugs  # noqa: F401  (its tables in Base.metadata)
from contracts.drugs import CatalogueDrug, DrugOrder, StockPush
from contracts.ids import make_id_number
from storage.drugs import DrugStore, beijing_day
from tests.support.migrations import check_migration, engine_copy

TABLES = {"drug_catalogue", "drug_stock", "drug_orders", "drug_order_events",
          "drug_reconciliations"}
ME = make_id_number(random.Random(8))
P = "P32010200001"
OTC, RX = "XN02BEA001A001010100002", "XA10BAA017A001010101445"


def test_migration_0014_matches_the_models_and_goes_down_and_up(template_db: Path,
                                                                tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables=TABLES, previous="0013", matches="drug_")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[DrugStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield DrugStore(engine)


def _order(no: str, lines: dict[str, int]) -> DrugOrder:
    items = [{"drug_code": c, "name": "药", "quantity": q, "unit_price": "2.50"}
             for c, q in lines.items()]
    return DrugOrder.model_validate({
        "order_no": no, "pharmacy_code": P, "id_number": ME, "name": "王小明",
        "items": items, "total": str(Decimal("2.50") * sum(lines.values())),
        "delivery": "pickup"})


async def _stock(store: DrugStore, push_id: str, mode: str, **lines: int) -> object:
    return await store.apply_stock(StockPush.model_validate({
        "push_id": push_id, "pharmacy_code": P, "mode": mode,
        "items": [{"drug_code": {"otc": OTC, "rx": RX}[k], "quantity": v}
                  for k, v in lines.items()]}), actor="erp")


async def test_stock_pushes_never_go_negative_and_replay_once(store: DrugStore) -> None:
    assert (await _stock(store, "S-001", "snapshot", otc=5, rx=2)).outcome == "applied"
    got = await _stock(store, "S-002", "delta", otc=-2, rx=-3)
    assert got.outcome == "refused" and got.refusals[0][0] == "items.1.quantity"
    assert await store.stock(P) == {OTC: 5, RX: 2}  # nothing applied
    assert (await _stock(store, "S-003", "delta", otc=-2)).outcome == "applied"
    assert (await _stock(store, "S-003", "delta", otc=-2)).outcome == "replay"
    assert await store.stock(P) == {OTC: 3, RX: 2}


async def test_an_order_holds_stock_or_is_refused_whole(store: DrugStore) -> None:
    await _stock(store, "S-001", "snapshot", otc=5, rx=2)
    row, created, short = await store.create_order(_order("ORDER-0001", {OTC: 4, RX: 3}),
                                                   actor="mall")
    assert row is None and not created
    assert [f for f, _ in short] == ["items.1.quantity"] and "has 2" in short[0][1]
    assert await store.stock(P) == {OTC: 5, RX: 2}  # the OTC line taken first was given back
    row, created, _ = await store.create_order(_order("ORDER-0002", {OTC: 4, RX: 2}),
                                               actor="mall")
    assert created and row is not None and row["status"] == "created"
    again, created, _ = await store.create_order(_order("ORDER-0002", {OTC: 4, RX: 2}),
                                                 actor="mall")
    assert not created and again is not None and again["order_no"] == "ORDER-0002"
    assert await store.stock(P) == {OTC: 1, RX: 0}


async def test_moves_are_compare_and_set_with_events_replayed_once(store: DrugStore) -> None:
    await _stock(store, "S-001", "snapshot", otc=5)
    await store.create_order(_order("ORDER-0003", {OTC: 2}), actor="mall")
    at = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # Beijing: 12-01
    got = await store.move("ORDER-0003", expect=("created",), status="paid", actor="mall",
                           event="paid", ref="paid:ORDER-0003", paid_at=at,
                           paid_day=beijing_day(at))
    assert got.outcome == "ok" and got.order is not None and got.order["paid_day"] == "2026-12-01"
    again = await store.move("ORDER-0003", expect=("created",), status="paid", actor="mall",
                             event="paid", ref="paid:ORDER-0003")
    assert again.outcome == "replay"
    wrong = await store.move("ORDER-0003", expect=("shipped",), status="received",
                             actor="mall", event="received")
    assert wrong.outcome == "conflict" and wrong.order is not None
    assert (await store.move("NOPE-00001", expect=("paid",), status="x", actor="a",
                             event="x")).outcome == "not_found"
    await store.move("ORDER-0003", expect=("paid",), status="erp_rejected", actor="erp",
                     event="erp_rejected", restock=True)
    assert await store.stock(P) == {OTC: 5}
    lines = await store.day_lines(P, datetime(2026, 12, 1).date())
    assert [(ln.order_no, ln.kind, ln.amount) for ln in lines] == [
        ("ORDER-0003", "sale", Decimal("5.00"))]
    assert [e["event"] for e in await store.events("ORDER-0003")] == [
        "created", "paid", "erp_rejected"]


async def test_the_catalogue_is_replaced_by_cores(store: DrugStore) -> None:
    await store.replace_catalogue([CatalogueDrug(drug_code=OTC, name="对乙酰氨基酚片", rx=False),
                                   CatalogueDrug(drug_code=RX, name="二甲双胍片", rx=True)])
    got = await store.replace_catalogue([CatalogueDrug(drug_code=RX, name="二甲双胍片", rx=True,
                                                       max_qty=3)])
    assert got == {"drugs": 1, "rx": 1, "removed": 1, "added": 0}
    cat = await store.catalogue()
    assert list(cat) == [RX] and cat[RX].max_qty == 3
    assert await store.catalogue_synced_at() is not None
