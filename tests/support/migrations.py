"""Shared parts of the storage tests' migration checks: the tables of a SQLite file, one
migration checked against the models (down to the revision before it and up again), an
engine on a copy of the migrated template, and PostgreSQL's down-and-up."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.journal import make_engine
from storage.migrate import _ROOT, upgrade
from storage.models import Base
from tests.support.ops import sqlite_url
from tests.support.postgres import alembic_downgrade

__all__ = ["check_migration", "engine_at", "engine_copy", "pg_down_and_up", "sqlite_tables"]


def sqlite_tables(path: Path) -> set[str]:
    """The table names in the SQLite file at ``path``."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def check_migration(template_db: Path, tmp_path: Path, *, tables: Collection[str],
                    previous: str, matches: str | None = None) -> None:
    """On a copy of ``template_db``: ``tables`` are there and match ``storage.models``
    (no autogenerate diff mentions ``matches``, or any of ``tables`` when it is None);
    ``downgrade previous`` drops them all; ``upgrade head`` brings them back."""
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    wanted = set(tables)
    assert sqlite_tables(path) >= wanted
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    names = [matches] if matches is not None else sorted(wanted)
    assert [d for d in diffs if any(n in repr(d) for n in names)] == []
    cfg = Config(str(_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(_ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", sqlite_url(path))
    command.downgrade(cfg, previous)
    assert not wanted & sqlite_tables(path)
    command.upgrade(cfg, "head")
    assert sqlite_tables(path) >= wanted


@asynccontextmanager
async def engine_at(url: str) -> AsyncIterator[AsyncEngine]:
    """``make_engine(url)``, disposed afterwards."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def engine_copy(template_db: Path, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on ``tmp_path/hub.db``, a copy of the migrated ``template_db``."""
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    async with engine_at(sqlite_url(path)) as engine:
        yield engine


async def pg_down_and_up(url: str, previous: str) -> None:
    """Migrate ``url`` to head, down to ``previous`` and up to head again (off the loop:
    alembic runs its own)."""
    await asyncio.to_thread(upgrade, url)
    await asyncio.to_thread(alembic_downgrade, url, previous)
    await asyncio.to_thread(upgrade, url)
