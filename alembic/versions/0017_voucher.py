"""F13 e-voucher, query channels, 医税平台 (issue 13)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 04:00:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL (``storage.voucher``):
each voucher's one use (``voucher_uses``, the token's digest as primary key: a second
insert is a replayed voucher) and the settlements and kiosk business requests by key.
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('voucher_uses',
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('request_key', sa.String(length=100), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_digest')
    )
    op.create_table('voucher_requests',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('caller', sa.String(length=40), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('amount', sa.String(length=20), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.Column('reason_field', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index(op.f('ix_voucher_requests_caller'), 'voucher_requests', ['caller'],
                    unique=False)
    op.create_index(op.f('ix_voucher_requests_status'), 'voucher_requests', ['status'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_voucher_requests_status'), table_name='voucher_requests')
    op.drop_index(op.f('ix_voucher_requests_caller'), table_name='voucher_requests')
    op.drop_table('voucher_requests')
    op.drop_table('voucher_uses')
