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
    # The log is a big table: CONCURRENTLY builds the index without blocking writes, and
    # PostgreSQL runs it only outside a transaction (SQLite ignores both; docs/decisions.md).
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_audit_events_team_id_id', 'audit_events', ['team_id', 'id'],
            unique=False, postgresql_concurrently=True,
        )
        op.drop_index(
            'ix_audit_events_team_id', table_name='audit_events', postgresql_concurrently=True
        )


def downgrade():
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_audit_events_team_id', 'audit_events', ['team_id'],
            unique=False, postgresql_concurrently=True,
        )
        op.drop_index(
            'ix_audit_events_team_id_id', table_name='audit_events', postgresql_concurrently=True
        )
