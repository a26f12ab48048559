"""the back office locks an account for a while after repeated wrong passwords

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('backoffice_users', sa.Column('failed_sign_ins', sa.Integer(), server_default='0', nullable=False))
    op.add_column('backoffice_users', sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('backoffice_users', 'locked_until')
    op.drop_column('backoffice_users', 'failed_sign_ins')
