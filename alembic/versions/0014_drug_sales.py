"""F11 online drug purchase (prescription center, pharmacy ERP, supervision)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 17:00:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL.
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
