"""F15 大病保险承办机构 (issue 13): shares, batches, financing notices, clues

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 04:00:00.000000

Written by hand (``storage.serious_illness``); plain types only, the same on SQLite and
PostgreSQL. ``serious_illness_shares``: one row per core settlement id (a settlement or
its 冲销) and its share's way to the insurer, with the claim's due and payment days.
``serious_illness_batches``: 赔付明细, 分析报告, 清算, 轧差, frozen once per kind and
period. ``serious_illness_financing``: financing notices per year and paying-resident
count. ``serious_illness_clues``: 疑点数据 clues passed to the insurer.
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def _times() -> list[sa.Column]:
    return [sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table('serious_illness_shares',
    sa.Column('setl_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('orig_setl_id', sa.String(length=40), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('settled_at', sa.String(length=19), nullable=False),
    sa.Column('year', sa.String(length=4), nullable=False),
    sa.Column('institution_code', sa.String(length=30), nullable=False),
    sa.Column('share', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('idem_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('delivered_on', sa.String(length=10), nullable=False),
    sa.Column('due_on', sa.String(length=10), nullable=False),
    sa.Column('paid_on', sa.String(length=10), nullable=False),
    *_times(),
    sa.PrimaryKeyConstraint('setl_id'))
    for col in ('orig_setl_id', 'id_number', 'year', 'status', 'due_on'):
        op.create_index(f'ix_serious_illness_shares_{col}', 'serious_illness_shares', [col])
    op.create_table('serious_illness_batches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    *_times(),
    sa.PrimaryKeyConstraint('id'))
    op.create_table('serious_illness_financing',
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('year', sa.String(length=4), nullable=False),
    sa.Column('payers', sa.Integer(), nullable=False),
    sa.Column('total', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    *_times(),
    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_serious_illness_financing_year', 'serious_illness_financing', ['year'])
    op.create_table('serious_illness_clues',
    sa.Column('clue_id', sa.String(length=40), nullable=False),
    sa.Column('institution_code', sa.String(length=30), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    *_times(),
    sa.PrimaryKeyConstraint('clue_id'))


def downgrade() -> None:
    op.drop_table('serious_illness_clues')
    op.drop_index('ix_serious_illness_financing_year', table_name='serious_illness_financing')
    op.drop_table('serious_illness_financing')
    op.drop_table('serious_illness_batches')
    for col in ('orig_setl_id', 'id_number', 'year', 'status', 'due_on'):
        op.drop_index(f'ix_serious_illness_shares_{col}', table_name='serious_illness_shares')
    op.drop_table('serious_illness_shares')
