"""F9 转移接续 (national transfer platform)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 17:00:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL. One row per
application number (``storage.transfer``), its status history, the durable pull cursor
of the platform's feed, and the 参保凭证 PDF of an offline (未联网地区) transfer.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transfers',
    sa.Column('application_no', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('channel_app_id', sa.String(length=64), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('insutype', sa.String(length=3), nullable=False),
    sa.Column('source_division', sa.String(length=6), nullable=False),
    sa.Column('target_division', sa.String(length=6), nullable=False),
    sa.Column('offline', sa.Boolean(), nullable=False),
    sa.Column('application', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('reason_field', sa.String(length=60), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('application_no')
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_id_number'), ['id_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_status'), ['status'], unique=False)
    op.create_table('transfer_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('application_no', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transfer_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfer_events_application_no'),
                              ['application_no'], unique=False)
    op.create_table('transfer_cursors',
    sa.Column('feed', sa.String(length=20), nullable=False),
    sa.Column('cursor', sa.String(length=64), nullable=False),
    sa.Column('pulled', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('feed')
    )
    op.create_table('transfer_certificates',
    sa.Column('application_no', sa.String(length=40), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('application_no')
    )


def downgrade() -> None:
    op.drop_table('transfer_certificates')
    op.drop_table('transfer_cursors')
    with op.batch_alter_table('transfer_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfer_events_application_no'))
    op.drop_table('transfer_events')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_status'))
        batch_op.drop_index(batch_op.f('ix_transfers_id_number'))
    op.drop_table('transfers')
