"""F13 storage: migration 0017 matches the models (and goes down and up); a voucher is
spent once, atomically (concurrent claims: one wins, the others see a replay); a
request's row ends once (a dead one may still end done after a DLQ re-drive); shown
masked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import storage.voucher  # noqa: F401  (its tables in Base.metadata)
from storage.voucher import VoucherStore, masked
from tests.support.migrations import check_migration, engine_copy

ID = "320102199003071234"


def test_migration_0017_matches_the_models_and_goes_down_and_up(template_db: Path,
                                                                tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables={"voucher_uses", "voucher_requests"},
                    previous="0016", matches="voucher_")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[VoucherStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield VoucherStore(engine)


async def test_a_voucher_pays_once_and_a_repeat_finds_its_request(store: VoucherStore) -> None:
    first = await store.claim("H1:S1", kind="outpatient", caller="H1", id_number=ID,
                              digest="d1", amount="1.00", token="t" * 64)
    assert first.outcome == "new"
    again = await store.claim("H1:S1", kind="outpatient", caller="H1", id_number=ID,
                              digest="d1", amount="1.00", token="t" * 64)
    assert again.outcome == "repeat" and again.request and again.request["status"] == "queued"
    other = await store.claim("H1:S2", kind="outpatient", caller="H1", id_number=ID,
                              digest="d2", amount="1.00", token="t" * 64)
    assert other.outcome == "replayed" and await store.get("H1:S2") is None
    clash = await store.claim("H1:S1", kind="outpatient", caller="H1", id_number=ID,
                              digest="d9", token="u" * 64)
    assert clash.outcome == "conflict" and await store.spent_by("u" * 64) is None
    assert await store.spent_by("t" * 64) == "H1:S1"


async def test_concurrent_claims_of_one_voucher_spend_it_once(store: VoucherStore) -> None:
    got = await asyncio.gather(*(store.claim(f"H1:C{i}", kind="pharmacy", caller="H1",
                                             id_number=ID, digest=f"d{i}", token="v" * 64)
                                 for i in range(5)))
    assert sorted(c.outcome for c in got) == ["new"] + ["replayed"] * 4


async def test_a_request_leaves_queued_once_and_is_shown_masked(store: VoucherStore) -> None:
    await store.claim("K1:R1", kind="change", caller="K1", id_number=ID, digest="d")
    assert await store.finish("K1:R1", "dead", reason="given up")
    assert not await store.finish("K1:R1", "dead", reason="again")
    # re-driven from the DLQ, the partner took it after all
    assert await store.finish("K1:R1", "done", result={"biz_no": "K1", "certno": ID})
    assert not await store.finish("K1:R1", "rejected", reason="late")
    row = await store.get("K1:R1")
    assert row is not None and row["status"] == "done" and row["result"]["biz_no"] == "K1"
    shown = masked(row)
    assert "digest" not in shown and shown["id_number"] == "320102********1234"
    assert shown["result"]["certno"] == "320102********1234"
