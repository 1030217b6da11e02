"""F14 institution reconciliation and 单边帐 (issue 13): runs, cases, files, notices

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 04:00:00.000000

Written by hand; plain types only, the same on SQLite and PostgreSQL
(``storage.institution_recon``): one row per reconciliation run of an institution and
day (totals, differences, the diagnosis as JSON), one 单边帐 case per institution, day
and setl_id, the 9101/3202 files by file_qury_no (base64), and the 移动支付/电子处方
settlement notices.
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recon_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('fixmedins_code', sa.String(length=12), nullable=False),
    sa.Column('stmt_date', sa.String(length=10), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('result', sa.String(length=12), nullable=False),
    sa.Column('differing', sa.Text(), nullable=False),
    sa.Column('institution', sa.Text(), nullable=False),
    sa.Column('core', sa.Text(), nullable=False),
    sa.Column('findings', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recon_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recon_runs_fixmedins_code'), ['fixmedins_code'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_recon_runs_stmt_date'), ['stmt_date'],
                              unique=False)
    op.create_table('recon_cases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('fixmedins_code', sa.String(length=12), nullable=False),
    sa.Column('stmt_date', sa.String(length=10), nullable=False),
    sa.Column('setl_id', sa.String(length=30), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('scope', sa.String(length=12), nullable=False),
    sa.Column('chnl_type', sa.String(length=2), nullable=False),
    sa.Column('row', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('rule', sa.String(length=12), nullable=False),
    sa.Column('action', sa.String(length=12), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('rereconciled', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recon_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recon_cases_fixmedins_code'), ['fixmedins_code'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_recon_cases_status'), ['status'], unique=False)
    op.create_table('recon_files',
    sa.Column('file_qury_no', sa.String(length=32), nullable=False),
    sa.Column('fixmedins_code', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('filename', sa.String(length=80), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('file_qury_no')
    )
    op.create_table('recon_notices',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('fixmedins_code', sa.String(length=12), nullable=False),
    sa.Column('setl_date', sa.String(length=10), nullable=False),
    sa.Column('setl_id', sa.String(length=30), nullable=False),
    sa.Column('chnl_type', sa.String(length=2), nullable=False),
    sa.Column('row', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recon_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recon_notices_fixmedins_code'),
                              ['fixmedins_code'], unique=False)


def downgrade() -> None:
    op.drop_table('recon_notices')
    op.drop_table('recon_files')
    with op.batch_alter_table('recon_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recon_cases_status'))
        batch_op.drop_index(batch_op.f('ix_recon_cases_fixmedins_code'))
    op.drop_table('recon_cases')
    with op.batch_alter_table('recon_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recon_runs_stmt_date'))
        batch_op.drop_index(batch_op.f('ix_recon_runs_fixmedins_code'))
    op.drop_table('recon_runs')
