"""audit log index by team and id

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 09:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # A page of one team's log reads that team's newest ids; with an index on team_id alone,
    # PostgreSQL walked the primary key backwards past every newer row of other teams.
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_team_id_id', ['team_id', 'id'], unique=False)
        batch_op.drop_index('ix_audit_events_team_id')


def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_team_id', ['team_id'], unique=False)
        batch_op.drop_index('ix_audit_events_team_id_id')
