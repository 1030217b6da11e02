"""difficulty populations (F7 困难人员数据交互平台)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 15:05:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL. The tables of
``storage.difficulty``: lists received from the departments, their records through
初审/复核, the identities the hub holds per person, the 同步日志 and the caseworker's
choice cases (seed 003 lines 1471-1532, 1802-1816).
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('difficulty_lists',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=20), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('list_ref', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('refusals', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('department', 'list_ref')
    )
    op.create_table('difficulty_records',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('list_id', sa.String(length=32), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=20), nullable=False),
    sa.Column('change', sa.String(length=8), nullable=False),
    sa.Column('identity', sa.String(length=2), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=1), nullable=False),
    sa.Column('remark', sa.Text(), nullable=False),
    sa.Column('comparison', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('first_reviewer', sa.String(length=64), nullable=False),
    sa.Column('second_reviewer', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('platform_status', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('difficulty_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_difficulty_records_list_id'), ['list_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_difficulty_records_id_number'), ['id_number'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_difficulty_records_status'), ['status'],
                              unique=False)
    op.create_table('difficulty_identities',
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('identity', sa.String(length=2), nullable=False),
    sa.Column('department', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('record_id', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id_number', 'identity')
    )
    op.create_table('difficulty_sync_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=12), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('identity', sa.String(length=2), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('alert', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('difficulty_sync_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_difficulty_sync_log_record_id'), ['record_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_difficulty_sync_log_status'), ['status'],
                              unique=False)
    op.create_table('difficulty_cases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.String(length=32), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('ended_identity', sa.String(length=2), nullable=False),
    sa.Column('options', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('chosen', sa.String(length=2), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('difficulty_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_difficulty_cases_status'), ['status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('difficulty_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_difficulty_cases_status'))
    op.drop_table('difficulty_cases')
    with op.batch_alter_table('difficulty_sync_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_difficulty_sync_log_status'))
        batch_op.drop_index(batch_op.f('ix_difficulty_sync_log_record_id'))
    op.drop_table('difficulty_sync_log')
    op.drop_table('difficulty_identities')
    with op.batch_alter_table('difficulty_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_difficulty_records_status'))
        batch_op.drop_index(batch_op.f('ix_difficulty_records_id_number'))
        batch_op.drop_index(batch_op.f('ix_difficulty_records_list_id'))
    op.drop_table('difficulty_records')
    op.drop_table('difficulty_lists')
