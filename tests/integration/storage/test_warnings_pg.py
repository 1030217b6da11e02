"""Alembic 0009 on PostgreSQL: the F8 tables go up, down and up again, and the store's
insert-or-keep, run upsert and compare-and-set work there (``asyncpg``). Needs PostgreSQL
on 5433 (``make postgres``); each test works in a database of its own, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from contracts.warnings import ExpenseWarning, SelfPaid
from storage.journal import make_engine
from storage.migrate import _ROOT, upgrade
from storage.warnings import WarningStore

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
    name = f"warn_{uuid.uuid4().hex[:10]}"
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


def _w(dept: str = "union") -> ExpenseWarning:
    return ExpenseWarning(department=dept, month="202611", kinds=("poverty",),  # type: ignore[arg-type]
                          line=Decimal(81250), person=SelfPaid(
                              id_number=ID, name="王小明", rural=False, insurance="employee",
                              self_paid=Decimal("90000.5")))


async def test_warning_store_on_postgresql(pg_url: str) -> None:
    await asyncio.to_thread(upgrade, pg_url)
    await asyncio.to_thread(_downgrade, pg_url, "0008")
    await asyncio.to_thread(upgrade, pg_url)
    engine = make_engine(pg_url)
    try:
        store = WarningStore(engine)
        await store.start_run("202611", "ops")
        await store.start_run("202611", "ops")
        assert (await store.run("202611") or {})["runs"] == 2
        assert await store.add([_w(), _w("civil_affairs")]) == 2
        assert await store.add([_w()]) == 0
        w = _w()
        assert await store.move(w.id, expect=("pending",), status="queued")
        assert not await store.move(w.id, expect=("pending",), status="queued")
        assert await store.move(w.id, expect=("queued",), status="acknowledged", ack_no="A")
        summary = await store.summary("202611")
        assert summary["union"]["acknowledged"] == 1 and summary["civil_affairs"]["pending"] == 1
    finally:
        await engine.dispose()
