"""F10 store: the migration matches the models; every state change is a compare-and-set;
a 销号 batch freezes once; an import is stored once, whole."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from contracts.finance import RefundOrder
from simulators.finance import make_order
from storage.refunds import (
    ClosureItemRow,
    ClosureRow,
    ImportRowRow,
    RefundImportRow,
    RefundOrderRow,
    RefundStore,
    masked_order,
)
from tests.support.migrations import check_migration, engine_copy

TABLES = {t.__tablename__ for t in (RefundOrderRow, ClosureRow, ClosureItemRow,
                                    RefundImportRow, ImportRowRow)}


def test_migration_0013_matches_the_models_and_goes_back(template_db: Path,
                                                          tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables=TABLES, previous="0012")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[RefundStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield RefundStore(engine)


def _order(no: str = "TF-1", **kw: object) -> RefundOrder:
    return RefundOrder.model_validate(make_order(random.Random(3), no, **kw))  # type: ignore[arg-type]


async def test_an_order_is_added_once_and_moves_only_from_expected_states(
        store: RefundStore) -> None:
    row, new = await store.add_order(_order())
    assert new and row["status"] == "received" and row["version"] == 1
    _, again = await store.add_order(_order())
    assert not again
    assert not await store.move("TF-1", expect=("sent",), status="refunded")
    assert await store.move("TF-1", expect=("received",), status="queued")
    assert await store.move("TF-1", expect=("queued",), status="withdrawing")
    # finance's answer arriving late loses the race: the withdrawal holds
    assert not await store.move("TF-1", expect=("queued",), version=1, status="sent")
    assert await store.move("TF-1", expect=("withdrawing",), status="withdrawn")
    assert not await store.move("TF-1", expect=("queued", "sent", "withdrawing"),
                                status="refunded")
    got = await store.get("TF-1")
    assert got is not None and got["status"] == "withdrawn"
    with pytest.raises(ValueError):
        await store.move("TF-1", expect=("withdrawn",), status="paid")


async def test_a_correction_is_a_new_version_and_the_view_is_masked(store: RefundStore) -> None:
    order = _order("TF-2")
    await store.add_order(order)
    await store.move("TF-2", expect=("received",), status="failed", reason_field="payee",
                     reason="收款账号校验失败")
    assert not await store.move("TF-2", expect=("failed",), version=2, status="queued")
    assert await store.move("TF-2", expect=("failed",), version=1, status="queued",
                            new_version=2, payload=order.model_dump_json())
    row = await store.get("TF-2")
    assert row is not None and row["version"] == 2
    view = masked_order(row)
    assert order.id_number and order.id_number not in str(view)
    assert view["account_no"].startswith("****") and "payload" not in view


async def test_a_closure_freezes_once_with_its_total(store: RefundStore) -> None:
    for i, amount in enumerate(("1.10", "2.20")):
        no = f"TF-C{i}"
        await store.add_order(_order(no, amount=amount))
        await store.move(no, expect=("received",), status="refunded",
                         refunded_on=date(2026, 1, 5))
    await store.add_order(_order("TF-C9", amount="9.99"))  # not refunded: not in it
    rows = await store.refunded_between(date(2026, 1, 1), date(2026, 1, 10))
    assert [r["order_no"] for r in rows] == ["TF-C0", "TF-C1"]
    c = await store.open_closure("finance:2026-01-1", "finance", "2026-01-1",
                                 date(2026, 1, 1), date(2026, 1, 10), "ops")
    assert c["status"] == "collecting" and c["runs"] == 1
    assert await store.freeze(c["id"], rows)
    assert not await store.freeze(c["id"], rows[:1])  # frozen: a second run keeps it
    again = await store.open_closure("finance:2026-01-1", "finance", "2026-01-1",
                                     date(2026, 1, 1), date(2026, 1, 10), "ops")
    assert (again["count"], again["total"], again["runs"], again["pages"]) == (2, "3.30", 2, 1)
    assert await store.move_items(c["id"], expect=("pending",), status="queued", page=1) == 2
    assert await store.move_items(c["id"], expect=("pending",), status="queued", page=1) == 0


async def test_an_import_is_stored_once_and_whole(store: RefundStore) -> None:
    good = [{"row_no": 2, "seq": 1, "name": "张三", "id_number": "32010219880928997X",
             "period_start": "202601", "period_end": "202603", "arrived_fen": 100}]
    assert await store.save_import("TF1", "a.csv", "cw", 3, good, {"accepted": 1})
    assert not await store.save_import("TF1", "a.csv", "cw", 3, good, {"accepted": 9})
    assert await store.import_report("TF1") == {"accepted": 1}
    assert [r["row_no"] for r in await store.import_rows("TF1")] == [2]
