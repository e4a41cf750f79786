"""two-factor sign-in: TOTP secrets (encrypted), recovery codes, team-enforced 2FA

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:15:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'two_factor',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('secret_encrypted', sa.Text(), nullable=False),
        sa.Column('enabled_at', sa.DateTime(), nullable=True),
        sa.Column('last_used_step', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'],
            name=op.f('fk_two_factor_user_id_users'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_two_factor')),
    )
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=160), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'],
            name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
    )
    with op.batch_alter_table('recovery_codes') as batch_op:
        batch_op.create_index(
            batch_op.f('ix_recovery_codes_user_id'), ['user_id'], unique=False
        )
    # A plain ADD COLUMN (SQLite can): a batch would rebuild teams without its AUTOINCREMENT
    # (a server default that is an expression makes Alembic rebuild), and ids would be reused.
    op.add_column(
        'teams',
        sa.Column('require_two_factor', sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade():
    with op.batch_alter_table(
        'teams', table_kwargs={'sqlite_autoincrement': True}
    ) as batch_op:
        batch_op.drop_column('require_two_factor')
    op.drop_table('recovery_codes')
    op.drop_table('two_factor')
