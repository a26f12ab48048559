"""buyer deadlines by order

Notifications reads the buyer deadlines of a fetched batch's orders in one statement (issue 14);
without this index that read scanned every deadline it keeps.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 02:50:00
"""
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():  # CONCURRENTLY: notifications keeps writing while it builds
        op.create_index('ix_buyer_deadlines_order_id', 'buyer_deadlines', ['order_id'],
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_buyer_deadlines_order_id', table_name='buyer_deadlines',
                      postgresql_concurrently=True, if_exists=True)
