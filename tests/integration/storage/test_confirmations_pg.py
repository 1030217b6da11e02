"""Alembic 0007 on PostgreSQL: the identity-confirmation cases table goes up, down and up
again, and the store's insert-or-find and compare-and-set work there (``asyncpg``).
Needs PostgreSQL on 5433 (``make postgres``); each test works in a database of its own,
dropped afterwards."""

from __future__ import annotations

import pytest

from storage.confirmations import ConfirmationStore, NewCase, case_id_for
from tests.support.migrations import engine_at, pg_down_and_up

pytestmark = pytest.mark.integration

ID = "32010219880928997X"


async def test_cases_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0006")
    async with engine_at(pg_url) as engine:
        store = ConfirmationStore(engine)
        new = NewCase(correlation_id="corr-pg", type="tax.flexible.terminate",
                      business_key=ID, entity_key="psn:x", id_number=ID, name="王芳",
                      held_message="{}", reason_code="TX402", reason="身份信息不唯一")
        case, created = await store.open(new)
        again, created_again = await store.open(new)
        assert created and not created_again and again["id"] == case_id_for("corr-pg")
        assert await store.move(case["id"], expect=("open",), status="confirmed")
        assert not await store.move(case["id"], expect=("open",), status="confirmed")
        counts = await store.counts()
        assert (counts["open"], counts["confirmed"]) == (0, 1)
        stored = await store.get(case["id"])
        assert stored is not None and stored["created_at"].tzinfo is not None
