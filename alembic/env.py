"""Alembic environment: async engines (aiosqlite, asyncpg); URL from the hub's settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import storage.application_models
import storage.assistance
import storage.confirmations
import storage.difficulty
import storage.drugs
import storage.institution_recon
import storage.ops_models
import storage.refunds
import storage.returnfile_models
import storage.serious_illness
import storage.transfer
import storage.union
import storage.voucher
import storage.warnings  # noqa: F401  (every model's tables, for autogenerate)
from storage.journal import make_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from config.settings import load_settings
        url = load_settings().database_url
    return url


def _do(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = make_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_do)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
