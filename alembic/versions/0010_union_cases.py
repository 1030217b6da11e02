"""union cases (F12 工会互助): cases with their timers, breach alerts, the union's tables

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 15:05:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL. One row per
case the city union sent (``storage.union``): its timers as Beijing dates (acceptance,
closure, archive), the clock's pauses (JSON), the decision and the result file; one
alert per case and breached timer; the union's yearly tables (roster, 给付标准, 审核规则).
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('union_cases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('case_no', sa.String(length=24), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('unit_code', sa.String(length=20), nullable=False),
    sa.Column('unit_name', sa.String(length=80), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('applicant_name', sa.String(length=30), nullable=False),
    sa.Column('applicant_id', sa.String(length=18), nullable=False),
    sa.Column('applicant_phone', sa.String(length=20), nullable=False),
    sa.Column('application', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('complete_on', sa.String(length=10), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accept_due', sa.String(length=10), nullable=False),
    sa.Column('accepted_on', sa.String(length=10), nullable=True),
    sa.Column('close_due', sa.String(length=10), nullable=True),
    sa.Column('closed_on', sa.String(length=10), nullable=True),
    sa.Column('final_on', sa.String(length=10), nullable=True),
    sa.Column('archive_due', sa.String(length=10), nullable=True),
    sa.Column('archived_on', sa.String(length=10), nullable=True),
    sa.Column('pauses', sa.Text(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payable', sa.String(length=20), nullable=False),
    sa.Column('result_file', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_no')
    )
    with op.batch_alter_table('union_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_union_cases_status'), ['status'], unique=False)
    op.create_table('union_alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('case_no', sa.String(length=24), nullable=False),
    sa.Column('timer', sa.String(length=12), nullable=False),
    sa.Column('due', sa.String(length=10), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'timer', name='uq_union_alerts_case_timer')
    )
    with op.batch_alter_table('union_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_union_alerts_raised_at'), ['raised_at'],
                              unique=False)
    op.create_table('union_standards',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('year')
    )


def downgrade() -> None:
    op.drop_table('union_standards')
    with op.batch_alter_table('union_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_union_alerts_raised_at'))
    op.drop_table('union_alerts')
    with op.batch_alter_table('union_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_union_cases_status'))
    op.drop_table('union_cases')
