"""invitation reminders and names, and when a user was last active

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 00:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invitations') as batch_op:
        batch_op.add_column(sa.Column('reminded_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('name', sa.String(length=120), nullable=True))
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('last_seen_at')
    with op.batch_alter_table('invitations') as batch_op:
        batch_op.drop_column('name')
        batch_op.drop_column('reminded_at')
