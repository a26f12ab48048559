"""order-system simulator: the payments it took (it refuses to close a paid order)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sim_order_payments',
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_id')
    )


def downgrade() -> None:
    op.drop_table('sim_order_payments')
