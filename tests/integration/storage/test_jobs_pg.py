"""Alembic 0016 on PostgreSQL: the jobs table goes up, down and up again, and the store's
compare-and-set take, lease-guarded writes and cancel work there (``asyncpg``). Needs
PostgreSQL on 5433 (``make postgres``); a database of its own, dropped afterwards."""

from __future__ import annotations

import pytest

from tests.support.migrations import engine_at, pg_down_and_up
from tests.unit.storage.test_jobs import exercise

pytestmark = pytest.mark.integration


async def test_job_store_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0015")
    async with engine_at(pg_url) as engine:
        await exercise(engine)
