"""failure path: inbox content hash, quarantine, dead letters

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:35:54.893265
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dead_letters',
    sa.Column('dead_letter_id', sa.UUID(), nullable=False),
    sa.Column('source_topic', sa.String(length=128), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('consumer_group', sa.String(length=128), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('error_class', sa.String(length=128), nullable=False),
    sa.Column('original_key', sa.Text(), nullable=True),
    sa.Column('original_key_encoding', sa.String(length=16), nullable=False),
    sa.Column('original_value', sa.Text(), nullable=False),
    sa.Column('original_encoding', sa.String(length=16), nullable=False),
    sa.Column('original_size', sa.BigInteger(), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('original_truncated', sa.Boolean(), nullable=False),
    sa.Column('original_event_id', sa.UUID(), nullable=True),
    sa.Column('original_type', sa.String(length=64), nullable=True),
    sa.Column('producer', sa.String(length=64), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('summarized', sa.Boolean(), nullable=False),
    sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replays', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('dead_letter_id')
    )
    op.create_index('ix_dead_letters_failed_at', 'dead_letters', ['failed_at'], unique=False)
    op.create_index('ix_dead_letters_reason', 'dead_letters', ['reason_code', 'failed_at'], unique=False)
    op.create_index('ix_dead_letters_topic', 'dead_letters', ['source_topic', 'failed_at'], unique=False)
    op.create_index('ix_dead_letters_unsummarized', 'dead_letters', ['recorded_at'], unique=False, postgresql_where=sa.text('NOT summarized'))
    op.create_table('quarantined_items',
    sa.Column('worker', sa.String(length=64), nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.String(length=128), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=False),
    sa.Column('quarantined_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('worker', 'job', 'item_id')
    )
    op.add_column('inbox', sa.Column('content_hash', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column('inbox', 'content_hash')
    op.drop_table('quarantined_items')
    op.drop_index('ix_dead_letters_unsummarized', table_name='dead_letters', postgresql_where=sa.text('NOT summarized'))
    op.drop_index('ix_dead_letters_topic', table_name='dead_letters')
    op.drop_index('ix_dead_letters_reason', table_name='dead_letters')
    op.drop_index('ix_dead_letters_failed_at', table_name='dead_letters')
    op.drop_table('dead_letters')
