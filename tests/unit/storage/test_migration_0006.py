"""Alembic 0006 on SQLite: the interaction log's ids are as long as a tax serial, as the
model says, and the migration goes down and up again."""

from __future__ import annotations

import shutil
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from contracts.envelope import SERIAL_MAX_LENGTH
from storage.migrate import _ROOT
from storage.models import Base


def _lengths(path: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            cols = inspect(conn).get_columns("interaction_log")
        return {c["name"]: c["type"].length for c in cols
                if c["name"] in ("message_id", "correlation_id")}
    finally:
        engine.dispose()


def test_migration_0006_widens_the_log_ids_to_the_serial_limit(template_db: Path,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    shutil.copy(template_db, path)
    assert _lengths(path) == {"message_id": SERIAL_MAX_LENGTH,
                              "correlation_id": SERIAL_MAX_LENGTH}
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    assert [d for d in diffs if "interaction_log" in repr(d)
            or "partner_requests" in repr(d)] == []
    cfg = Config(str(_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(_ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", f"sqlite+aiosqlite:///{path}")
    command.downgrade(cfg, "0005")
    assert _lengths(path) == {"message_id": 64, "correlation_id": 64}
    command.upgrade(cfg, "head")
    assert _lengths(path) == {"message_id": 80, "correlation_id": 80}
