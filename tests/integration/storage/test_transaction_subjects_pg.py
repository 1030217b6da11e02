"""Alembic 0015 on PostgreSQL: the subject table goes up, down and up again, and the
journal records subjects once (insert-or-keep under asyncpg) and finds them by hash.
Needs PostgreSQL on 5433 (``make postgres``); a database of its own, dropped afterwards."""

from __future__ import annotations

import random

import pytest

from contracts.ids import make_credit_code, make_id_number
from services.transactions import search_by_subject
from storage.journal import Journal, TxnUpdate
from tests.support.migrations import engine_at, pg_down_and_up

pytestmark = pytest.mark.integration

RNG = random.Random(5015)
ID, USCC = make_id_number(RNG), make_credit_code(RNG)


async def test_transaction_subjects_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0014")
    async with engine_at(pg_url) as engine:
        journal = Journal(engine, subject_key=b"pg-test-key-0123456789abcdef")
        key = f"{USCC}:{ID}"
        await journal.write(TxnUpdate("c1", "tax.employee.enroll", key, "core", "received",
                                      only_if_new=True))
        await journal.write(TxnUpdate("c1", "tax.employee.enroll", key, "core", "submitted"))
        journal._subjects_seen.clear()  # another process writing the same rows: kept once
        await journal.write(TxnUpdate("c1", "tax.employee.enroll", key, "hub", "delivered"))
        page = await search_by_subject(journal, ID)
        assert page.total == 1 and page.items[0].status == "delivered"
        assert (await search_by_subject(journal, USCC)).total == 1
