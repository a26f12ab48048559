"""What the back office shows: the DOMAIN.md list columns, the ticket detail, the finance list,
the work queue and the dashboard.

Amounts stay integer cents with their currency; the page formats them. Nothing here carries a
buyer's personal data beyond the account id (the platform keeps addresses and phone numbers)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints


def storable(text: str) -> str:
    """Text PostgreSQL and JSON can hold: no NUL, no lone surrogate (both would fail deep inside as a
    500; refused here as a 422 naming the field)."""
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return text


Text = Annotated[str, AfterValidator(storable)]
Ref = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class TicketSummary(View):
    ticket_id: str
    ticket_no: str
    order_id: str
    shop_id: str
    type: str
    status: str
    refund_cents: int
    currency: str
    applied_at: datetime
    reviewed_at: datetime | None
    ordered_at: datetime | None


class TicketPage(View):
    items: list[TicketSummary]
    page: int
    page_size: int
    has_more: bool


class DetailLine(View):
    line_no: int
    sku: str
    unit_price_cents: int | None
    quantity: int
    cap_cents: int
    refund_cents: int
    exchange_sku: str | None = None  # an exchange to another variant: shipped instead


class TimelineEntry(View):
    at: datetime
    from_status: str
    to_status: str
    actor_role: str
    actor_id: str
    action: str
    reason: str
    amount_before_cents: int | None
    amount_after_cents: int | None


class Receipt(View):
    receipt_id: uuid.UUID
    receipt_type: str
    lines: list[dict[str, object]]
    inspection: str
    operator: str
    received_at: datetime
    note: str


class Shipment(View):
    shipment_id: uuid.UUID
    shipment_type: str
    lines: list[dict[str, object]]
    status: str
    carrier: str | None
    waybill: str | None
    dispatched_at: datetime | None


class ErpOrder(View):
    erp_order_id: uuid.UUID
    kind: str
    status: str
    attempts: int
    last_error: str
    erp_ref: str | None


class RefundState(View):
    refund_id: uuid.UUID
    status: str
    amount_cents: int
    attempts: int
    last_error: str
    completed_at: datetime | None


class Decision(View):
    decision_id: uuid.UUID
    ticket_id: str
    command_type: str
    user_id: str
    submitted_at: datetime
    outcome: str
    outcome_code: str
    outcome_message: str
    outcome_at: datetime | None


class BuyerFlag(View):
    """Monitoring's serial-returner flag on the ticket's buyer in this shop, with the rule's inputs."""

    flagged_at: datetime
    reason: str
    window_days: int
    tickets_in_window: int
    orders_in_window: int
    max_tickets: int
    max_rate_percent: int
    min_orders: int


class LineState(View):
    """A line's after-sales state as the order page shows it (售后中 / 部分退款 / 已退款 …)."""

    line_no: int
    state: str
    label: str
    in_progress_units: int
    refunded_units: int
    refunded_cents: int
    exchanged_units: int
    repaired_units: int


class TicketDetail(View):
    ticket: TicketSummary
    reason_code: str
    description: str
    before_shipment: bool
    paid_at: datetime | None
    ops_reviewer_id: str | None
    finance_reviewer_id: str | None
    manager_id: str | None
    refund_coupon: bool
    refund_virtual_currency: bool
    refund_shipping: bool
    deadline_at: datetime | None
    deadline_kind: str | None
    close_reason: str
    buyer_id: str
    buyer_after_sales_count: int
    return_carrier: str | None
    return_waybill: str | None
    lines: list[DetailLine]
    receipts: list[Receipt]
    shipments: list[Shipment]
    erp_orders: list[ErpOrder]
    refund: RefundState | None
    timeline: list[TimelineEntry]
    decisions: list[Decision]
    buyer_flag: BuyerFlag | None = None
    return_address: dict[str, str] | None = None  # where the buyer was told to send the goods
    line_states: list[LineState] = Field(default_factory=list)


class FinanceLine(View):
    line_no: int
    sku: str
    unit_price_cents: int | None
    quantity: int
    refund_cents: int


class FinanceRefund(View):
    ticket_id: str
    ticket_no: str
    order_id: str
    shop_id: str
    status: str
    applied_at: datetime
    reviewed_at: datetime | None
    lines: list[FinanceLine]
    total_cents: int
    currency: str


class FailedErpOrder(View):
    erp_order_id: uuid.UUID
    ticket_id: str
    ticket_no: str
    kind: str
    status: str
    attempts: int
    last_error: str


class Failures(View):
    refunds: list[TicketSummary]
    erp_orders: list[FailedErpOrder]


class ReasonView(View):
    code: str
    label: str
    visible: bool
    position: int


class DeadLetter(View):
    dead_letter_id: uuid.UUID
    source_topic: str
    reason_code: str
    reason: str
    original_type: str | None
    producer: str
    failed_at: datetime
    replays: int


class DeadLetterDetail(DeadLetter):
    """Where the message was and why it failed; not its content, which may hold personal data
    (an operator reads it with ``aftersales dlq show``, and replays with ``aftersales dlq replay``)."""

    partition: int
    offset: int
    consumer_group: str
    error_class: str
    original_event_id: uuid.UUID | None
    original_size: int
    original_sha256: str
    original_truncated: bool
    replayed_at: datetime | None


class TicketFilter(BaseModel):
    """The ticket list's search (DOMAIN.md's back-office views); every field optional."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_no: Ref | None = None
    order_id: Ref | None = None
    type: str | None = Field(None, max_length=32, pattern=r"^[A-Z_]+$")
    status: str | None = Field(None, max_length=32, pattern=r"^[A-Z_]+$")
    applied_from: AwareDatetime | None = None
    applied_to: AwareDatetime | None = None
    ordered_from: AwareDatetime | None = None
    ordered_to: AwareDatetime | None = None
    shop: Ref | None = None
    buyer: Ref | None = None
    newest_first: bool = True
    page: int = Field(1, ge=1, le=500)
    page_size: int = Field(20, ge=1, le=100)


class WorkItem(View):
    """An alert as work (monitoring's work queue): who owns it, how old, how often seen."""

    item_id: uuid.UUID
    kind: str
    severity: str
    owner: str
    state: str
    order_id: str
    ticket_id: str | None
    shop_id: str | None
    message: str
    opened_at: datetime
    last_seen_at: datetime
    ack_due_at: datetime | None
    occurrences: int
    escalations: int
    acknowledged_by: str | None
    resolved_by: str | None
    note: str


class WorkItemFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str | None = Field(None, max_length=32, pattern=r"^[a-z]+$")
    include_resolved: bool = False
    limit: int = Field(100, ge=1, le=500)


class RateView(View):
    name: str
    in_tickets: int
    sold: int
    per_mille: int | None


class Count(View):
    key: str
    value: int


class Amount(View):
    currency: str
    cents: int


class DayAmount(View):
    day: date
    currency: str
    cents: int


class StateTime(View):
    status: str
    tickets: int
    p50_seconds: float
    p95_seconds: float
    max_seconds: float


class Dashboard(View):
    """The after-sales figures of the signed-in person's shops over a period of reporting days."""

    shops: list[str]
    first_day: date
    last_day: date
    rate: RateView
    by_sku: list[RateView]
    by_category: list[RateView]
    tickets_opened: int
    reasons: list[Count]  # "TYPE/REASON"
    refunded: list[Amount]
    refunds_per_day: list[DayAmount]
    refunds_completed: int
    refunds_failed: int
    refunds_retried: int
    time_in_state: list[StateTime]
    sla_breaches: list[Count]
    integration_errors: list[Count]
    dead_letters: list[Count]  # admins only (a dead letter may name no shop)
    queue_ageing: list[Count]  # open and acknowledged items by age band


class DashboardFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    first_day: date | None = Field(None, alias="from")
    last_day: date | None = Field(None, alias="to")
    shop: Ref | None = None
