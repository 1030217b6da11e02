"""Alembic 0019 on PostgreSQL: the F15 tables go up, down and up again, and the store's
insert-or-keep, compare-and-set, overdue list and paying-resident count work there
(``asyncpg``). Needs PostgreSQL on 5433 (``make postgres``); each test works in a database of
its own, dropped afterwards."""

from __future__ import annotations

from datetime import date

import pytest

from storage.serious_illness import SeriousIllnessStore
from tests.support.migrations import engine_at, pg_down_and_up

pytestmark = pytest.mark.integration

ID = "11010519491231002X"


async def test_serious_illness_store_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0018")
    async with engine_at(pg_url) as engine:
        store = SeriousIllnessStore(engine)
        share = {"kind": "settle", "setl_id": "S1", "orig_setl_id": "", "id_number": ID,
                 "name": "王芳", "settled_at": "2026-03-04 09:30:00", "institution_code": "H1",
                 "serious_illness_pay": "100.00"}
        _, new = await store.record_share(share, idem_key="k", status="received")
        _, again = await store.record_share(share, idem_key="k", status="received")
        assert new and not again
        assert await store.set_share("S1", "delivered", expect=("received",),
                                     delivered_on="2026-03-04", due_on="2026-03-25")
        assert not await store.set_share("S1", "dead", expect=("received",))
        assert [r["setl_id"] for r in await store.overdue(date(2026, 4, 1))] == ["S1"]
        assert await store.mark_paid("S1", "2026-03-20")
        assert await store.overdue(date(2026, 4, 1)) == []
        assert await store.paying_residents("2026") == 0
        row, new = await store.put_batch("claims:2026Q1", kind="claims", period="2026Q1",
                                         direction="in", status="received", count=0,
                                         total="0.00", payload={"rows": []})
        assert new and row["runs"] == 1
