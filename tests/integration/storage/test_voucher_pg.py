"""Alembic 0017 on PostgreSQL: the F13 tables go up, down and up again, and a voucher is
spent once there too (concurrent claims: one wins). Needs PostgreSQL on 5433
(``make postgres``)."""

from __future__ import annotations

import asyncio

import pytest

from storage.voucher import VoucherStore
from tests.support.migrations import engine_at, pg_down_and_up

pytestmark = pytest.mark.integration

ID = "320102199003071234"


async def test_voucher_tables_and_one_time_use_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0016")
    async with engine_at(pg_url) as engine:
        store = VoucherStore(engine)
        got = await asyncio.gather(*(store.claim(f"H1:C{i}", kind="outpatient", caller="H1",
                                                 id_number=ID, digest=f"d{i}", amount="1.00",
                                                 token="v" * 64) for i in range(4)))
        assert sorted(c.outcome for c in got) == ["new", "replayed", "replayed", "replayed"]
        winner = await store.spent_by("v" * 64)
        assert winner is not None
        assert (await store.claim(winner, kind="outpatient", caller="H1", id_number=ID,
                                  digest=f"d{winner[-1]}", token="v" * 64)).outcome == "repeat"
        assert await store.finish(winner, "done", result={"setl_id": "S1"})
        row = await store.get(winner)
        assert row is not None and row["status"] == "done"
