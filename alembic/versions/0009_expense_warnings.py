"""expense warnings (F8 高额费用预警): monthly runs and one row per department+month+person

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:05:00.000000

Written by hand (``storage.warnings``). ``expense_warning_runs``: one row per month
run (how often, by whom, how many people, warnings and publications).
``expense_warnings``: one row per department, month and person, its id derived from
the three, so a month run twice finds its rows; status pending -> queued ->
acknowledged (ack_no) | rejected | dead. Plain types only: the same on SQLite and
PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('expense_warning_runs',
    sa.Column('month', sa.String(length=6), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('warnings', sa.Integer(), nullable=False),
    sa.Column('published', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('month')
    )
    op.create_table('expense_warnings',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('month', sa.String(length=6), nullable=False),
    sa.Column('department', sa.String(length=20), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('rural', sa.Boolean(), nullable=False),
    sa.Column('self_paid', sa.String(length=20), nullable=False),
    sa.Column('kinds', sa.String(length=40), nullable=False),
    sa.Column('line', sa.String(length=20), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('ack_no', sa.String(length=64), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('resends', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('expense_warnings', schema=None) as batch_op:
        batch_op.create_index('ix_expense_warnings_month_department', ['month', 'department'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_expense_warnings_status'), ['status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('expense_warnings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_expense_warnings_status'))
        batch_op.drop_index('ix_expense_warnings_month_department')
    op.drop_table('expense_warnings')
    op.drop_table('expense_warning_runs')
