"""application parts (F1): one row per part result, and who pushes the final result

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 11:30:00.000000

Written by hand. A multi-part application (e.g. 1,000 graduates stopped in one
batch) records each part's result as its own row (insert or ignore), so a part
never waits for another and a redelivered intake cannot wipe results;
``final_by`` names the message that pushes the final result (exactly one).
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('application_parts',
    sa.Column('app_id', sa.String(length=32), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('reason_field', sa.String(length=120), nullable=False),
    sa.Column('reason_text', sa.Text(), nullable=False),
    sa.Column('accept_no', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'correlation_id')
    )
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('final_by', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('final_by')
    op.drop_table('application_parts')
