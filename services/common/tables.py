"""The after-sales database: one bounded context, one schema, created by one Alembic history.

Who owns what is written down below (``OWNERS``, ``SHARED``) and checked by
``tests/contract/test_table_ownership.py``: a worker's package may name only the tables it owns,
the shared ones, and the reads listed in ``ALSO_READS`` with their reason. A worker learns
another worker's facts from the events it consumes into its own tables (finance copies what an
order paid into ``finance_orders``; it does not read intake's ``orders``).

Why one history and not one per worker: the shared tables below are written in the same
transaction as each worker's own rows (state + outbox + inbox in one commit), which separate
databases would turn into a distributed transaction. Workers still deploy one at a time: each
needs a minimum revision, not the head (``migrations_check``), and revisions only expand.

Why several workers move the ticket: the ticket is the one aggregate every step of after-sales
moves (review approves it, finance refunds it, the warehouse receives its goods, the scheduler
expires it). Each worker applies only its own transitions through the domain state machine
(``services/domain/ticket.py``), under ``SELECT … FOR UPDATE`` and a version check
(``TicketStore.save`` raises ``ConcurrentUpdate``, retried), and every move writes
``ticket_audit`` and a ``TicketStatusChanged`` in the same transaction. One writer would need
every worker to send commands to a ticket service and wait for it, adding a hop to each step
without adding a rule the state machine does not already enforce.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
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
    currency: Mapped[str] = mapped_column(String(3), server_default="CNY")

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
    return_address: Mapped[dict[str, str] | None] = mapped_column(JSONB, nullable=True)
    reissue: Mapped[bool] = mapped_column(Boolean, server_default="false")  # 补发 instead of a refund
    delivery_refused: Mapped[bool] = mapped_column(Boolean, server_default="false")  # 拒收: its return is the receipt
    close_reason: Mapped[str] = mapped_column(String(500), default="")
    deadline_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    deadline_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), server_default="CNY")
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))

    __table_args__ = (
        Index("ix_tickets_deadline", "deadline_at", postgresql_where=text("deadline_at IS NOT NULL")),
        # the back office's ticket lists: every query is scoped to the user's shops, newest first
        Index("ix_tickets_shop_applied", "shop_id", "applied_at", "ticket_id"),
        Index("ix_tickets_shop_status_applied", "shop_id", "status", "applied_at", "ticket_id"),
        Index("ix_tickets_shop_type_applied", "shop_id", "type", "applied_at", "ticket_id"),
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


class PaidOrderRow(Base):
    """Finance's copy of what an order paid, written from the OrderPlaced finance consumed (an
    OrderPlaced never changes, so the first copy stays). Finance never reads intake's ``orders``."""

    __tablename__ = "finance_orders"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(64))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # as in orders.lines
    shipping_fee_cents: Mapped[int] = mapped_column(BigInteger)
    platform_subsidy_cents: Mapped[int] = mapped_column(BigInteger)
    platform_fee_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), server_default="CNY")
    recorded_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class RefundLedgerRow(Base):
    """Per order: what was paid and refunded, per line; locked while a refund is reserved."""

    __tablename__ = "refund_ledger"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lines: Mapped[dict[str, Any]] = mapped_column(JSONB)  # line_no -> {paid, quantity, refunded, units}
    shipping_fee_cents: Mapped[int] = mapped_column(BigInteger)
    shipping_refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    settlement_cents: Mapped[int] = mapped_column(BigInteger)
    # refunds already taken off the settlement: the subsidy and fee shares are recomputed from it
    settled_refund_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
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


class SimOrderLineLabel(Base):
    """What the order-system simulator's order page shows per line (售后中 / 已退款), from the
    line states monitoring publishes; the newest state wins (events of one order are in order)."""

    __tablename__ = "sim_order_line_labels"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(16))
    refunded_units: Mapped[int] = mapped_column(Integer)
    refunded_cents: Mapped[int] = mapped_column(BigInteger)


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


class StaffUserRow(Base):
    """A person who signs in to the back office: one role, the shops they may see and act on."""

    __tablename__ = "backoffice_users"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, never the password
    role: Mapped[str] = mapped_column(String(16))
    shops: Mapped[list[str]] = mapped_column(JSONB, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    failed_sign_ins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(TZ, nullable=True)


class StaffSessionRow(Base):
    """A signed-in session: only the SHA-256 of its token is stored, so a leaked table opens nothing."""

    __tablename__ = "backoffice_sessions"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("backoffice_users.user_id"), index=True)
    created_at: Mapped[datetime] = mapped_column(TZ)
    expires_at: Mapped[datetime] = mapped_column(TZ, index=True)


class SubmittedDecisionRow(Base):
    """A decision a signed-in person submitted, and what the worker made of it (from its events)."""

    __tablename__ = "backoffice_decisions"
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str] = mapped_column(String(64))
    command_type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(TZ)
    outcome: Mapped[str] = mapped_column(String(16))  # ACCEPTED, APPLIED, REFUSED
    outcome_code: Mapped[str] = mapped_column(String(64), default="")
    outcome_message: Mapped[str] = mapped_column(String(500), default="")
    outcome_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)


# ---------------------------------------------------------------- monitoring
class MonitoringOrderRow(Base):
    """What monitoring keeps of an order: its shop, buyer, day and lines (units sold per sku)."""

    __tablename__ = "monitoring_orders"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(64))
    buyer_id: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[datetime] = mapped_column(TZ)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # line_no, sku, category, quantity

    __table_args__ = (Index("ix_monitoring_orders_buyer", "shop_id", "buyer_id", "placed_at"),)


class MonitoringTicketRow(Base):
    """A ticket as monitoring follows it: its current state and since when (time in state)."""

    __tablename__ = "monitoring_tickets"
    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    shop_id: Mapped[str] = mapped_column(String(64))
    buyer_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    status_since: Mapped[datetime] = mapped_column(TZ)
    opened_at: Mapped[datetime] = mapped_column(TZ)

    __table_args__ = (Index("ix_monitoring_tickets_buyer", "shop_id", "buyer_id", "opened_at"),
                      Index("ix_monitoring_tickets_order_id", "order_id"))  # a batch's tickets, read at once


class MonitoringStateTimeRow(Base):
    """How long one ticket spent in one state (written when it left the state)."""

    __tablename__ = "monitoring_state_times"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    entered_at: Mapped[datetime] = mapped_column(TZ)
    left_at: Mapped[datetime] = mapped_column(TZ)
    seconds: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_monitoring_state_times", "shop_id", "left_at", "status"),)


class MonitoringCounterRow(Base):
    """One figure of one shop on one day: ``metric`` with up to two keys (sku and category, type
    and reason, topic and reason code, …); every event adds to it in its own transaction."""

    __tablename__ = "monitoring_counters"
    shop_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    key1: Mapped[str] = mapped_column(String(128), primary_key=True)
    key2: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_monitoring_counters_metric", "metric", "day"),)


class MonitoringDirtyDayRow(Base):
    """A shop's day whose figures changed since they were last published."""

    __tablename__ = "monitoring_dirty_days"
    shop_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class MonitoringWorkItemRow(Base):
    """An alert as a piece of work (``services/domain/work_queue.py``)."""

    __tablename__ = "monitoring_work_items"
    item_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    condition: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message: Mapped[str] = mapped_column(String(500))
    opened_at: Mapped[datetime] = mapped_column(TZ)
    last_seen_at: Mapped[datetime] = mapped_column(TZ)
    ack_due_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    occurrences: Mapped[int] = mapped_column(Integer)
    escalations: Mapped[int] = mapped_column(Integer)
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (
        # one item per condition while it is not resolved: a repeat adds to it
        Index("ux_monitoring_work_items_active", "condition", unique=True,
              postgresql_where=text("state <> 'RESOLVED'")),
        Index("ix_monitoring_work_items_due", "ack_due_at", postgresql_where=text("state = 'OPEN'")),
        Index("ix_monitoring_work_items_state", "state", "opened_at"),
    )


class MonitoringBuyerFlagRow(Base):
    """A buyer flagged as a serial returner in a shop, with the rule's inputs (the latest flag)."""

    __tablename__ = "monitoring_buyer_flags"
    shop_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64))
    flagged_at: Mapped[datetime] = mapped_column(TZ)
    window_days: Mapped[int] = mapped_column(Integer)
    tickets_in_window: Mapped[int] = mapped_column(Integer)
    orders_in_window: Mapped[int] = mapped_column(Integer)
    max_tickets: Mapped[int] = mapped_column(Integer)
    max_rate_percent: Mapped[int] = mapped_column(Integer)
    min_orders: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(300))


class MonitoringLineRow(Base):
    """An order line's after-sales state (``services/domain/line_state.py``)."""

    __tablename__ = "monitoring_lines"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    in_progress: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # ticket_id, type, units
    tickets_done: Mapped[list[str]] = mapped_column(JSONB)
    refunded_units: Mapped[int] = mapped_column(Integer)
    refunded_cents: Mapped[int] = mapped_column(BigInteger)
    cancelled_units: Mapped[int] = mapped_column(Integer)
    exchanged_units: Mapped[int] = mapped_column(Integer)
    repaired_units: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))


# ---------------------------------------------------------------- ownership
class BuyerDeadlineRow(Base):
    """A deadline the buyer must meet (notifications reminds of it once, ahead of time)."""

    __tablename__ = "buyer_deadlines"
    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_no: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(64))
    buyer_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    deadline_at: Mapped[datetime] = mapped_column(TZ)
    remind_at: Mapped[datetime] = mapped_column(TZ)
    reminded_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)

    __table_args__ = (Index("ix_buyer_deadlines_due", "remind_at", postgresql_where=text("reminded_at IS NULL")),
                      Index("ix_buyer_deadlines_order_id", "order_id"))  # a batch's deadlines, read at once


# ---------------------------------------------------------------- settlement
class SettlementOrderRow(Base):
    """An order as the settlement worker knows it until it enters a statement (``domain.settlement``);
    the columns fill in as the order's facts arrive, in whatever order the topics deliver them."""

    __tablename__ = "settlement_orders"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    currency: Mapped[str] = mapped_column(String(3), server_default="CNY")
    paid_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # known from OrderPlaced
    subsidy_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    fee_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    paid: Mapped[bool] = mapped_column(Boolean, server_default="false")
    completed: Mapped[bool] = mapped_column(Boolean, server_default="false")
    closed: Mapped[bool] = mapped_column(Boolean, server_default="false")
    open_tickets: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    entered_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    __table_args__ = (Index("ix_settlement_orders_held", "shop_id", postgresql_where=text("entered_on IS NULL")),)


class SettlementEntryRow(Base):
    """One line of a merchant's statements: an order's settlement or an adjustment of it. An
    adjustment that arrives before its order is entered waits (``entered_on`` NULL) and enters
    with it."""

    __tablename__ = "settlement_entries"
    entry_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    shop_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    paid_cents: Mapped[int] = mapped_column(BigInteger)
    subsidy_cents: Mapped[int] = mapped_column(BigInteger)
    fee_cents: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(TZ)
    entered_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    __table_args__ = (Index("ix_settlement_entries_statement", "shop_id", "entered_on"),)


OWNERS: dict[str, str] = {
    "orders": "intake", "parked_order_events": "intake", "reasons": "intake",
    "refunds": "finance", "refund_ledger": "finance", "compensations": "finance", "finance_orders": "finance",
    "warehouse_receipts": "warehouse", "warehouse_shipments": "warehouse", "warehouse_intercepts": "warehouse",
    "erp_orders": "erp_sync",
    "dead_letters": "dead_letters",
    "monitoring_orders": "monitoring", "monitoring_tickets": "monitoring", "monitoring_state_times": "monitoring",
    "monitoring_counters": "monitoring", "monitoring_dirty_days": "monitoring", "monitoring_work_items": "monitoring",
    "monitoring_buyer_flags": "monitoring", "monitoring_lines": "monitoring",
    "buyer_deadlines": "notifications",
    "settlement_orders": "settlement", "settlement_entries": "settlement",
    "backoffice_users": "backoffice", "backoffice_sessions": "backoffice", "backoffice_decisions": "backoffice",
    "sim_payment_refunds": "simulators", "sim_order_payments": "simulators", "sim_order_line_labels": "simulators",
}
SHARED: dict[str, str] = {
    "tickets": "the aggregate every worker moves, each only through its own transitions, under a row lock",
    "ticket_audit": "written with every ticket move, by whoever moved it",
    "inbox": "the runtime's; rows keyed by consumer group, so each worker sees only its own",
    "outbox": "the runtime's; rows keyed by producer, relayed by the worker that wrote them",
    "quarantined_items": "the runtime's; rows keyed by worker",
}
ALSO_READS: dict[str, dict[str, str]] = {
    "backoffice": {
        # the back office is the people's read side: it reads every worker's records and writes
        # none of them (its decisions go to Kafka as commands, and the workers apply them)
        "orders": "the ticket list's ordered-at and the order's buyer",
        "refunds": "the finance list and the failed refunds",
        "warehouse_receipts": "the ticket detail's receipts", "warehouse_shipments": "and shipments",
        "erp_orders": "the ticket detail's ERP orders and the failed-ERP view",
        "dead_letters": "the admins' dead-letter list",
        "reasons": "reason labels in lists and details",
        "monitoring_counters": "the dashboard's figures", "monitoring_state_times": "and its time in state",
        "monitoring_work_items": "the work queues", "monitoring_buyer_flags": "the serial-returner flag on a ticket",
        "monitoring_lines": "each line's after-sales state in the ticket detail",
    },
    "scheduler": {
        "orders": "the scheduler is intake's clock: it cancels unpaid orders (marks close_requested)",
        "parked_order_events": "and gives up on order events parked too long, as intake would",
    },
}

