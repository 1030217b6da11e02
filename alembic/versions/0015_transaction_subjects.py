"""H2: transactions searchable by person or unit (hash)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 20:00:00.000000

Written by hand (``storage.journal.TransactionSubject``): one row per transaction and
subject found in its business key, the subject as HMAC-SHA256 under the deployment's
``subject_hash_key`` (``contracts.subjects``), indexed for the search by person or unit.
No backfill: the key is a secret of the running hub, not of the migration, so
transactions written before this revision are not found by subject (they still are
by correlation id).
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transaction_subjects',
    sa.Column('correlation_id', sa.String(length=64), nullable=False),
    sa.Column('subject_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('correlation_id', 'subject_hash')
    )
    with op.batch_alter_table('transaction_subjects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transaction_subjects_subject_hash'),
                              ['subject_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transaction_subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transaction_subjects_subject_hash'))
    op.drop_table('transaction_subjects')
