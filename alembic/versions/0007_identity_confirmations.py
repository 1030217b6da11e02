"""identity confirmations: terminations tax held with TX402 (身份信息不唯一)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 15:00:00.000000

Written by hand. One row per 灵活就业终止参保 that tax refused as not unique: the
case the hub opens, the confirmation it sends tax (``confirm_no``, ``attempts``), the
held termination (its envelope, re-driven once tax confirms) and where the case
stands (``storage.confirmations``). Plain types only: the same on SQLite and
PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_confirmations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=80), nullable=False),
    sa.Column('business_key', sa.String(length=120), nullable=False),
    sa.Column('entity_key', sa.String(length=120), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('confirm_no', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('held_message', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('correlation_id')
    )
    with op.batch_alter_table('identity_confirmations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_confirmations_status'), ['status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_confirmations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_confirmations_status'))
    op.drop_table('identity_confirmations')
