"""scheduled jobs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'scheduled_jobs',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('last_started_at', sa.DateTime(), nullable=False),
        sa.Column('last_finished_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduled_jobs')),
    )


def downgrade():
    op.drop_table('scheduled_jobs')
