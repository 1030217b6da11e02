"""A throw-away PostgreSQL database per test, and alembic downgrades: one copy for every
test that needs them (``make postgres`` serves 127.0.0.1:5433; ``HUB_TEST_PG`` overrides)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from storage.migrate import _ROOT

__all__ = ["PG_ADMIN", "alembic_downgrade", "fresh_database", "pg_up"]

PG_ADMIN = os.environ.get("HUB_TEST_PG", "postgresql://hub:hub@127.0.0.1:5433/hub")


def pg_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 5433)) == 0


@asynccontextmanager
async def fresh_database(prefix: str) -> AsyncIterator[str]:
    """A new database ``<prefix>_<random>`` (its asyncpg URL), dropped afterwards; skipped
    when PostgreSQL is not running, except under CI, where that is a failure."""
    import asyncpg

    if not pg_up():
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL is not running on 5433 (make postgres)")
        pytest.skip("PostgreSQL not running on 5433 (make postgres)")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
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


def alembic_downgrade(url: str, revision: str) -> None:
    """``alembic downgrade <revision>`` on ``url`` with the project's migrations."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(_ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.downgrade(cfg, revision)
