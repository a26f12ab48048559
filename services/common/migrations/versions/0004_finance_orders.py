"""finance's own copy of what each order paid (finance stops reading intake's orders table)

Backfills from ``orders`` once, so tickets opened before this revision still find their order:
from here on finance writes the copy from the OrderPlaced events it consumes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('finance_orders',
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('shop_id', sa.String(length=64), nullable=False),
    sa.Column('lines', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('shipping_fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('platform_subsidy_cents', sa.BigInteger(), nullable=False),
    sa.Column('platform_fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.execute("""
        INSERT INTO finance_orders (order_id, shop_id, lines, shipping_fee_cents,
                                    platform_subsidy_cents, platform_fee_cents)
        SELECT order_id, shop_id, lines, shipping_fee_cents, platform_subsidy_cents, platform_fee_cents
        FROM orders
    """)


def downgrade() -> None:
    op.drop_table('finance_orders')
