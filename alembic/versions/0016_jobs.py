"""H4: durable jobs

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 20:00:00.000000

Placeholder written by the lead so the chain is fixed; its owner fills upgrade/downgrade.
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
