"""monitoring tickets by order

Monitoring reads the tickets of a fetched batch's orders in one statement (issue 14); without this
index that read scanned every ticket it ever followed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 22:05:00
"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():  # CONCURRENTLY: monitoring keeps writing while it builds
        op.create_index('ix_monitoring_tickets_order_id', 'monitoring_tickets', ['order_id'],
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_monitoring_tickets_order_id', table_name='monitoring_tickets',
                      postgresql_concurrently=True, if_exists=True)
