"""F7 医疗救助平台 exchanges (费用查询, 结算费用同步, 医疗救助结算数据, 阳光惠民 tables)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 17:00:00.000000

Written by hand (``storage.assistance``). ``assistance_settlements``: one row per core
settlement of a recipient (its ``setl_id`` unique), with where its 结算费用同步
(``sync_status``) and its month's 医疗救助结算数据 (``data_status``) stand;
``assistance_settlement_runs``: one row per month run; ``assistance_sunshine_log``:
阳光惠民's 救助费用 and 机构 rows pushed per day. Plain types only: the same on
SQLite and PostgreSQL.
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('assistance_settlements',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('setl_id', sa.String(length=40), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('month', sa.String(length=6), nullable=False),
    sa.Column('setl_date', sa.Date(), nullable=False),
    sa.Column('settled_at', sa.String(length=19), nullable=False),
    sa.Column('institution_code', sa.String(length=30), nullable=False),
    sa.Column('institution_name', sa.String(length=100), nullable=False),
    sa.Column('med_type', sa.String(length=6), nullable=False),
    sa.Column('medfee_total', sa.String(length=20), nullable=False),
    sa.Column('fund_pay', sa.String(length=20), nullable=False),
    sa.Column('serious_illness_pay', sa.String(length=20), nullable=False),
    sa.Column('assistance_pay', sa.String(length=20), nullable=False),
    sa.Column('self_pay', sa.String(length=20), nullable=False),
    sa.Column('identity', sa.String(length=2), nullable=False),
    sa.Column('department', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('sync_status', sa.String(length=12), nullable=False),
    sa.Column('sync_reason', sa.Text(), nullable=False),
    sa.Column('data_status', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('setl_id')
    )
    with op.batch_alter_table('assistance_settlements', schema=None) as batch_op:
        batch_op.create_index('ix_assistance_settlements_month_data', ['month', 'data_status'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_assistance_settlements_id_number'), ['id_number'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_assistance_settlements_setl_date'), ['setl_date'],
                              unique=False)
    op.create_table('assistance_settlement_runs',
    sa.Column('month', sa.String(length=6), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('excluded', sa.Integer(), nullable=False),
    sa.Column('pushed', sa.Integer(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('totals', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('month')
    )
    op.create_table('assistance_sunshine_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tbl', sa.String(length=12), nullable=False),
    sa.Column('day', sa.String(length=8), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('assistance_sunshine_log', schema=None) as batch_op:
        batch_op.create_index('ix_assistance_sunshine_log_key', ['tbl', 'day', 'ref'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('assistance_sunshine_log', schema=None) as batch_op:
        batch_op.drop_index('ix_assistance_sunshine_log_key')
    op.drop_table('assistance_sunshine_log')
    op.drop_table('assistance_settlement_runs')
    with op.batch_alter_table('assistance_settlements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assistance_settlements_setl_date'))
        batch_op.drop_index(batch_op.f('ix_assistance_settlements_id_number'))
        batch_op.drop_index('ix_assistance_settlements_month_data')
    op.drop_table('assistance_settlements')
