"""tax return files (回盘文件): files, names, records, line errors

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00.000000

Written by hand (alembic/env.py only sees storage.models and storage.ops_models;
these tables live in storage.returnfile_models on the same Base).
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('returnfile_files',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('file_date', sa.String(length=8), nullable=False),
    sa.Column('batch_no', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('line_errors', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('arrivals', sa.Integer(), nullable=False),
    sa.Column('delivered_batches', sa.Integer(), nullable=False),
    sa.Column('delivered_through', sa.Integer(), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('sha256')
    )
    with op.batch_alter_table('returnfile_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_returnfile_files_status'), ['status'], unique=False)
        batch_op.create_index('ix_returnfile_files_kind_date', ['kind', 'file_date'],
                              unique=False)

    op.create_table('returnfile_names',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('returnfile_names', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_returnfile_names_sha256'), ['sha256'], unique=False)

    op.create_table('returnfile_records',
    sa.Column('file_sha', sa.String(length=64), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('payer_type', sa.String(length=1), nullable=False),
    sa.Column('payer_code', sa.String(length=18), nullable=False),
    sa.Column('payer_name', sa.String(length=200), nullable=False),
    sa.Column('unit_code', sa.String(length=18), nullable=False),
    sa.Column('insutype', sa.String(length=3), nullable=False),
    sa.Column('period', sa.String(length=6), nullable=False),
    sa.Column('pay_base_fen', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('value_date', sa.String(length=8), nullable=False),
    sa.Column('result', sa.String(length=1), nullable=False),
    sa.Column('fail_reason', sa.String(length=100), nullable=False),
    sa.Column('mode', sa.String(length=1), nullable=False),
    sa.PrimaryKeyConstraint('file_sha', 'line_no')
    )
    with op.batch_alter_table('returnfile_records', schema=None) as batch_op:
        batch_op.create_index('ix_returnfile_records_payer_period', ['payer_code', 'period'],
                              unique=False)

    op.create_table('returnfile_line_errors',
    sa.Column('file_sha', sa.String(length=64), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('file_sha', 'line_no')
    )


def downgrade() -> None:
    op.drop_table('returnfile_line_errors')
    with op.batch_alter_table('returnfile_records', schema=None) as batch_op:
        batch_op.drop_index('ix_returnfile_records_payer_period')

    op.drop_table('returnfile_records')
    with op.batch_alter_table('returnfile_names', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_returnfile_names_sha256'))

    op.drop_table('returnfile_names')
    with op.batch_alter_table('returnfile_files', schema=None) as batch_op:
        batch_op.drop_index('ix_returnfile_files_kind_date')
        batch_op.drop_index(batch_op.f('ix_returnfile_files_status'))

    op.drop_table('returnfile_files')
