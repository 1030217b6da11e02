"""F10 退费 through 用友 finance

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 17:00:00.000000

Written by hand (``storage.refunds``); plain types only, the same on SQLite and
PostgreSQL. ``refund_orders``: one row per order at its latest version, its state
(received, queued, sent, failed, refunded, withdrawing, withdrawn, refused) changed by
compare-and-set only. ``refund_closures`` / ``refund_closure_items``: a 销号 batch per
target (finance: 旬, tax: month) and period, its items frozen once. ``refund_imports`` /
``refund_import_rows``: import files (1918) and their good rows.
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refund_orders',
    sa.Column('order_no', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('source', sa.String(length=1), nullable=False),
    sa.Column('refund_no', sa.String(length=40), nullable=False),
    sa.Column('payer_kind', sa.String(length=6), nullable=False),
    sa.Column('payer', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('period_start', sa.String(length=6), nullable=False),
    sa.Column('period_end', sa.String(length=6), nullable=False),
    sa.Column('amount', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('reason_field', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('finance_no', sa.String(length=64), nullable=False),
    sa.Column('alert', sa.Text(), nullable=False),
    sa.Column('refunded_on', sa.String(length=10), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_no')
    )
    with op.batch_alter_table('refund_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_orders_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_orders_payer'), ['payer'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_orders_refunded_on'), ['refunded_on'],
                              unique=False)
    op.create_table('refund_closures',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=8), nullable=False),
    sa.Column('period', sa.String(length=12), nullable=False),
    sa.Column('start_date', sa.String(length=10), nullable=False),
    sa.Column('end_date', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total', sa.String(length=20), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('refund_closure_items',
    sa.Column('closure_id', sa.String(length=40), nullable=False),
    sa.Column('order_no', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('refund_no', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.String(length=20), nullable=False),
    sa.Column('refunded_on', sa.String(length=10), nullable=False),
    sa.Column('page', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.PrimaryKeyConstraint('closure_id', 'order_no')
    )
    op.create_table('refund_imports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('report', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('refund_import_rows',
    sa.Column('import_id', sa.String(length=40), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('period_start', sa.String(length=6), nullable=False),
    sa.Column('period_end', sa.String(length=6), nullable=False),
    sa.Column('arrived_fen', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('import_id', 'row_no')
    )
    with op.batch_alter_table('refund_import_rows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_import_rows_id_number'), ['id_number'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refund_import_rows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_import_rows_id_number'))
    op.drop_table('refund_import_rows')
    op.drop_table('refund_imports')
    op.drop_table('refund_closure_items')
    op.drop_table('refund_closures')
    with op.batch_alter_table('refund_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_orders_refunded_on'))
        batch_op.drop_index(batch_op.f('ix_refund_orders_payer'))
        batch_op.drop_index(batch_op.f('ix_refund_orders_status'))
    op.drop_table('refund_orders')
