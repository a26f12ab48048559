"""The after-sales database: one bounded context, one schema, created by one Alembic history.

Each worker touches only the tables its repository names; tickets are shared because the
ticket is the aggregate every worker moves, always under a row lock.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class InboxRow(Base):
    """Event ids a consumer group has applied: a redelivered message changes nothing."""

    __tablename__ = "inbox"
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    content_hash: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class OutboxRow(Base):
    """Messages written in the same transaction as the state they announce; relayed to Kafka."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    producer: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    published_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)

    __table_args__ = (
        Index("ix_outbox_unpublished", "producer", "id", postgresql_where=text("published_at IS NULL")),
    )


class OrderRow(Base):
    """Intake's projection of upstream orders."""

    __tablename__ = "orders"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(64), index=True)
    buyer_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    placed_at: Mapped[datetime] = mapped_column(TZ)
    paid_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    shipping_fee_cents: Mapped[int] = mapped_column(BigInteger)
    platform_subsidy_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    platform_fee_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    close_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_orders_unpaid", "placed_at", postgresql_where=text("state = 'PENDING_PAYMENT'")),
    )


class ParkedOrderEvent(Base):
    """Order events that arrived before what they follow; applied later or dead-lettered."""

    __tablename__ = "parked_order_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(200))
    parked_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class TicketRow(Base):
    __tablename__ = "tickets"
    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_no: Mapped[str] = mapped_column(String(32), unique=True)
    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    shop_id: Mapped[str] = mapped_column(String(64), index=True)
    buyer_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    refund_total_cents: Mapped[int] = mapped_column(BigInteger)
    applied_at: Mapped[datetime] = mapped_column(TZ, index=True)
    reason_code: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[str]] = mapped_column(JSONB, default=list)
    before_shipment: Mapped[bool] = mapped_column(Boolean, default=False)
    paid_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    refund_coupon: Mapped[bool] = mapped_column(Boolean, default=False)
    refund_virtual_currency: Mapped[bool] = mapped_column(Boolean, default=False)
    refund_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    ops_reviewer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    manager_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    finance_reviewer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    goods_received: Mapped[bool] = mapped_column(Boolean, default=False)
    intercept: Mapped[str] = mapped_column(String(32), default="NONE")
    return_carrier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    return_waybill: Mapped[str | None] = mapped_column(String(64), nullable=True)
    close_reason: Mapped[str] = mapped_column(String(500), default="")
    deadline_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    deadline_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))

    __table_args__ = (
        Index("ix_tickets_deadline", "deadline_at", postgresql_where=text("deadline_at IS NOT NULL")),
    )


class TicketAuditRow(Base):
    """The negotiation history of a ticket: every transition, who, role, when, why, amount."""

    __tablename__ = "ticket_audit"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(64), ForeignKey("tickets.ticket_id"), index=True)
    at: Mapped[datetime] = mapped_column(TZ)
    from_status: Mapped[str] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    amount_before_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    amount_after_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ReasonRow(Base):
    """The reasons catalogue, per after-sales type, ordered by position."""

    __tablename__ = "reasons"
    type: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer)


class RefundRow(Base):
    """One refund per money decision; ``refund_id`` is the payment channel's idempotency key."""

    __tablename__ = "refunds"
    refund_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    goods_cents: Mapped[int] = mapped_column(BigInteger)
    shipping_cents: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))  # PENDING, SUCCEEDED, FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True, index=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    channel_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    completed_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)


class RefundLedgerRow(Base):
    """Per order: what was paid and refunded, per line; locked while a refund is reserved."""

    __tablename__ = "refund_ledger"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lines: Mapped[dict[str, Any]] = mapped_column(JSONB)  # line_no -> {paid, quantity, refunded, units}
    shipping_fee_cents: Mapped[int] = mapped_column(BigInteger)
    shipping_refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    settlement_cents: Mapped[int] = mapped_column(BigInteger)
    close_requested: Mapped[bool] = mapped_column(Boolean, default=False)


class PaymentChannelRefund(Base):
    """The payment-channel simulator's memory of idempotency keys (its own table)."""

    __tablename__ = "sim_payment_refunds"
    refund_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    channel_ref: Mapped[str] = mapped_column(String(64))
    executions: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class SimOrderPayment(Base):
    """The order-system simulator's own record of paid orders (it refuses to close those)."""

    __tablename__ = "sim_order_payments"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    paid_at: Mapped[datetime] = mapped_column(TZ)


class ReceiptRow(Base):
    """An after-sales receipt (售后入库) recorded from the WMS."""

    __tablename__ = "warehouse_receipts"
    receipt_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), index=True)
    ticket_no: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(64))
    receipt_type: Mapped[str] = mapped_column(String(32))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    inspection: Mapped[str] = mapped_column(String(32))
    operator: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(TZ, index=True)
    note: Mapped[str] = mapped_column(String(500), default="")


class ShipmentRow(Base):
    """An after-sales shipment (售后出库): requested, then dispatched with carrier and waybill."""

    __tablename__ = "warehouse_shipments"
    shipment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), index=True)
    ticket_no: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(64))
    shipment_type: Mapped[str] = mapped_column(String(32))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))  # REQUESTED, DISPATCHED
    requested_at: Mapped[datetime] = mapped_column(TZ)
    carrier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    waybill: Mapped[str | None] = mapped_column(String(64), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True, index=True)


class InterceptRow(Base):
    """A shipment intercept request for a refund-only ticket before shipment, and its result."""

    __tablename__ = "warehouse_intercepts"
    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    requested_at: Mapped[datetime] = mapped_column(TZ)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)


class ErpOrderRow(Base):
    """An order sent to a merchant's ERP; retried with backoff until acknowledged or given up."""

    __tablename__ = "erp_orders"
    erp_order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[str] = mapped_column(String(64), index=True)
    ticket_no: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))  # SENT, ACKNOWLEDGED, FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True, index=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    erp_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)

    __table_args__ = (Index("uq_erp_orders_ticket_kind", "ticket_id", "kind", unique=True),)


class CompensationRow(Base):
    """Coupon / virtual currency to return for a ticket, until marketing acknowledges it."""

    __tablename__ = "compensations"
    compensation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[str] = mapped_column(String(64))
    coupon_cents: Mapped[int] = mapped_column(BigInteger)
    virtual_currency_cents: Mapped[int] = mapped_column(BigInteger)
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)


class QuarantinedItem(Base):
    """A periodic job's item that failed for a reason of its own: set aside (with an alert) so the
    job's other items go on; released by hand (``aftersales quarantine release``)."""

    __tablename__ = "quarantined_items"
    worker: Mapped[str] = mapped_column(String(64), primary_key=True)
    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(String(300))
    quarantined_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class DeadLetterRow(Base):
    """The dead-letter worker's record of every dead letter, for listing, showing and replay."""

    __tablename__ = "dead_letters"
    dead_letter_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    source_topic: Mapped[str] = mapped_column(String(128))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    consumer_group: Mapped[str] = mapped_column(String(128))
    reason_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    error_class: Mapped[str] = mapped_column(String(128))
    original_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    original_key_encoding: Mapped[str] = mapped_column(String(16))
    original_value: Mapped[str] = mapped_column(Text)
    original_encoding: Mapped[str] = mapped_column(String(16))
    original_size: Mapped[int] = mapped_column(BigInteger)
    original_sha256: Mapped[str] = mapped_column(String(64))
    original_truncated: Mapped[bool] = mapped_column(Boolean)
    original_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    original_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    producer: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(TZ)
    recorded_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    summarized: Mapped[bool] = mapped_column(Boolean, default=False)
    replayed_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    replays: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_dead_letters_failed_at", "failed_at"),
        Index("ix_dead_letters_reason", "reason_code", "failed_at"),
        Index("ix_dead_letters_topic", "source_topic", "failed_at"),
        Index("ix_dead_letters_unsummarized", "recorded_at", postgresql_where=text("NOT summarized")),
    )
