"""the back office: its users, their sessions and the decisions they submitted; ticket-list indexes

The ticket list is always scoped to the signed-in user's shops and sorted by applied date, so each
filter (none, status, type) has a (shop_id, …, applied_at) index to read in order.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backoffice_users',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('shops', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('user_id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('backoffice_sessions',
    sa.Column('token_hash', sa.LargeBinary(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['backoffice_users.user_id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index(op.f('ix_backoffice_sessions_expires_at'), 'backoffice_sessions', ['expires_at'], unique=False)
    op.create_index(op.f('ix_backoffice_sessions_user_id'), 'backoffice_sessions', ['user_id'], unique=False)
    op.create_table('backoffice_decisions',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('ticket_id', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('command_type', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('outcome_code', sa.String(length=64), nullable=False),
    sa.Column('outcome_message', sa.String(length=500), nullable=False),
    sa.Column('outcome_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index(op.f('ix_backoffice_decisions_ticket_id'), 'backoffice_decisions', ['ticket_id'], unique=False)
    op.create_index('ix_tickets_shop_applied', 'tickets', ['shop_id', 'applied_at', 'ticket_id'], unique=False)
    op.create_index('ix_tickets_shop_status_applied', 'tickets', ['shop_id', 'status', 'applied_at', 'ticket_id'], unique=False)
    op.create_index('ix_tickets_shop_type_applied', 'tickets', ['shop_id', 'type', 'applied_at', 'ticket_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_tickets_shop_type_applied', table_name='tickets')
    op.drop_index('ix_tickets_shop_status_applied', table_name='tickets')
    op.drop_index('ix_tickets_shop_applied', table_name='tickets')
    op.drop_index(op.f('ix_backoffice_decisions_ticket_id'), table_name='backoffice_decisions')
    op.drop_table('backoffice_decisions')
    op.drop_index(op.f('ix_backoffice_sessions_user_id'), table_name='backoffice_sessions')
    op.drop_index(op.f('ix_backoffice_sessions_expires_at'), table_name='backoffice_sessions')
    op.drop_table('backoffice_sessions')
    op.drop_table('backoffice_users')
