"""Alembic 0007 on PostgreSQL: the identity-confirmation cases table goes up, down and up
again, and the store's insert-or-find and compare-and-set work there (``asyncpg``).
Needs PostgreSQL on 5433 (``make postgres``); each test works in a database of its own,
dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator

import pytest

from storage.confirmations import ConfirmationStore, NewCase, case_id_for
from storage.journal import make_engine
from storage.migrate import _ROOT, upgrade

pytestmark = pytest.mark.integration

PG_ADMIN = os.environ.get("HUB_TEST_PG", "postgresql://hub:hub@127.0.0.1:5433/hub")
ID = "32010219880928997X"


def _up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 5433)) == 0


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    import asyncpg

    if not _up():
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL is not running on 5433 (make postgres)")
        pytest.skip("PostgreSQL not running on 5433 (make postgres)")
    name = f"confirm_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(_ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.downgrade(cfg, revision)


async def test_cases_on_postgresql(pg_url: str) -> None:
    await asyncio.to_thread(upgrade, pg_url)
    await asyncio.to_thread(_downgrade, pg_url, "0006")
    await asyncio.to_thread(upgrade, pg_url)
    engine = make_engine(pg_url)
    try:
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
    finally:
        await engine.dispose()
