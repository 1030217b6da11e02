"""F11 online drug purchase (prescription center, pharmacy ERP, supervision)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 17:00:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL (``storage.drugs``):
core's drug catalogue with the 处方药 flag, each pharmacy's stock, orders and their
events (``ref`` unique: a partner's repeated event is a replay), and each pharmacy's
daily 对账. Money is decimal text.
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('drug_catalogue',
    sa.Column('drug_code', sa.String(length=30), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('rx', sa.Boolean(), nullable=False),
    sa.Column('insured', sa.Boolean(), nullable=False),
    sa.Column('max_qty', sa.Integer(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('drug_code')
    )
    op.create_table('drug_stock',
    sa.Column('pharmacy_code', sa.String(length=20), nullable=False),
    sa.Column('drug_code', sa.String(length=30), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pharmacy_code', 'drug_code')
    )
    op.create_table('drug_orders',
    sa.Column('order_no', sa.String(length=40), nullable=False),
    sa.Column('pharmacy_code', sa.String(length=20), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('total', sa.String(length=20), nullable=False),
    sa.Column('items', sa.Text(), nullable=False),
    sa.Column('hi_rxno', sa.String(length=40), nullable=False),
    sa.Column('delivery', sa.String(length=8), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('payment', sa.Text(), nullable=False),
    sa.Column('logistics', sa.Text(), nullable=False),
    sa.Column('return_kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('refund_amount', sa.String(length=20), nullable=False),
    sa.Column('supervision', sa.String(length=12), nullable=False),
    sa.Column('paid_day', sa.String(length=10), nullable=False),
    sa.Column('refund_day', sa.String(length=10), nullable=False),
    sa.Column('auto_received', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_no')
    )
    with op.batch_alter_table('drug_orders', schema=None) as batch_op:
        for column in ('pharmacy_code', 'id_number', 'status', 'paid_day', 'refund_day',
                       'shipped_at'):
            batch_op.create_index(batch_op.f(f'ix_drug_orders_{column}'), [column],
                                  unique=False)
    op.create_table('drug_order_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ref', sa.String(length=100), nullable=True),
    sa.Column('order_no', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('drug_order_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drug_order_events_order_no'), ['order_no'],
                              unique=False)
    op.create_table('drug_reconciliations',
    sa.Column('pharmacy_code', sa.String(length=20), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('balanced', sa.Boolean(), nullable=False),
    sa.Column('hub', sa.Text(), nullable=False),
    sa.Column('erp', sa.Text(), nullable=False),
    sa.Column('differences', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pharmacy_code', 'day')
    )


def downgrade() -> None:
    op.drop_table('drug_reconciliations')
    with op.batch_alter_table('drug_order_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drug_order_events_order_no'))
    op.drop_table('drug_order_events')
    with op.batch_alter_table('drug_orders', schema=None) as batch_op:
        for column in ('shipped_at', 'refund_day', 'paid_day', 'status', 'id_number',
                       'pharmacy_code'):
            batch_op.drop_index(batch_op.f(f'ix_drug_orders_{column}'))
    op.drop_table('drug_orders')
    op.drop_table('drug_stock')
    op.drop_table('drug_catalogue')
