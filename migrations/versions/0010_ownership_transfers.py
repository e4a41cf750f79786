"""ownership transfers: the owner offers the team to another admin, who accepts by link

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 00:10:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ownership_transfers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=True),
        sa.Column('from_user_id', sa.Integer(), nullable=False),
        sa.Column('to_user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('responded_at', sa.DateTime(), nullable=True),
        sa.Column('card_checked_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'cancelled', 'lapsed', 'expired')",
            name=op.f('ck_ownership_transfers_status'),
        ),
        sa.ForeignKeyConstraint(
            ['team_id'], ['teams.id'],
            name=op.f('fk_ownership_transfers_team_id_teams'), ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['from_user_id'], ['users.id'], name=op.f('fk_ownership_transfers_from_user_id_users')
        ),
        sa.ForeignKeyConstraint(
            ['to_user_id'], ['users.id'], name=op.f('fk_ownership_transfers_to_user_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ownership_transfers')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_ownership_transfers_token_hash')),
    )
    with op.batch_alter_table('ownership_transfers') as batch_op:
        batch_op.create_index(
            batch_op.f('ix_ownership_transfers_team_id'), ['team_id'], unique=False
        )
        batch_op.create_index(
            batch_op.f('ix_ownership_transfers_to_user_id'), ['to_user_id'], unique=False
        )
        batch_op.create_index(
            'uq_ownership_transfers_pending_team',
            ['team_id'],
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )


def downgrade():
    op.drop_table('ownership_transfers')
