"""every amount keeps its order's currency: orders, finance's copy of them and tickets record it

Existing rows were all in CNY (the only currency the code used until this revision).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TABLES = ("orders", "finance_orders", "tickets")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column('currency', sa.String(length=3), server_default='CNY', nullable=False))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, 'currency')
