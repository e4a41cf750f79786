"""email change (when the address last changed, when a change was last undone) and account
deletion (when the account was deleted)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('email_changed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('email_undone_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('email_undone_at')
        batch_op.drop_column('email_changed_at')
