"""interaction log ids as long as a tax serial (业务流水号, 80)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000

Written by hand. Tax's 业务流水号 (``ywlsh``) may be 1-80 characters (tax.xsd
``Serial``, ``contracts.envelope.SERIAL_MAX_LENGTH``), and a question tax asks core
is logged under its serial as message and correlation id: those two columns of
``interaction_log`` were 64, so on PostgreSQL a serial of 65-80 characters failed
the journal write after core had answered. ``partner_requests.serial`` is 80
already. Widening a VARCHAR is a catalogue change on PostgreSQL (no table rewrite);
SQLite does not enforce the length, and batch mode copies the table there.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_COLUMNS = ('message_id', 'correlation_id')


def upgrade() -> None:
    with op.batch_alter_table('interaction_log', schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.alter_column(name, existing_type=sa.String(length=64),
                                  type_=sa.String(length=80), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('interaction_log', schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.alter_column(name, existing_type=sa.String(length=80),
                                  type_=sa.String(length=64), existing_nullable=False)
