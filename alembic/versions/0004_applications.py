"""channel applications (F1)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00.000000

Written by hand (alembic/env.py only sees storage.models and storage.ops_models;
this table lives in storage.application_models on the same Base).
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('applications',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason_field', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payload_masked', sa.Text(), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('core_ref', sa.String(length=64), nullable=False),
    sa.Column('tax_serials', sa.Text(), nullable=False),
    sa.Column('parts', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'request_id', name='uq_applications_channel_request')
    )
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applications_status'), ['status'], unique=False)
        batch_op.create_index('ix_applications_channel_created', ['channel', 'created_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_index('ix_applications_channel_created')
        batch_op.drop_index(batch_op.f('ix_applications_status'))

    op.drop_table('applications')
