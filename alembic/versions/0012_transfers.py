"""F9 转移接续 (national transfer platform)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 17:00:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL.
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
