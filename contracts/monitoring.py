"""What the monitoring worker publishes: the work items ops act on, buyers flagged as serial
returners, each order line's after-sales state for the order system, and each shop's daily
figures. None carries personal data beyond ids."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, Field

from .aftersales import AfterSalesType
from .envelope import Contract, Id, Money, message
from .ops import Severity


class WorkItemState(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class WorkItemAction(StrEnum):
    OPENED = "OPENED"
    REPEATED = "REPEATED"  # the same condition was alerted again while the item was not resolved
    ACKNOWLEDGED = "ACKNOWLEDGED"
    ESCALATED = "ESCALATED"
    RESOLVED = "RESOLVED"


@message("WorkItemChanged")
class WorkItemChanged(Contract):
    """An alert as a piece of work: opened, repeated, acknowledged, escalated or resolved.

    ``condition`` is what the alert is about (its kind and ticket or order): while an item for a
    condition is not resolved, the same alert adds an occurrence to it instead of a second item."""

    item_id: uuid.UUID
    action: WorkItemAction
    condition: str = Field(max_length=200)
    kind: str = Field(max_length=64)
    severity: Severity
    owner: str = Field(max_length=32, description="The team expected to act: ops, finance, warehouse, admin, manager")
    state: WorkItemState
    order_id: Id
    ticket_id: Id | None = None
    message: str = Field(max_length=500)
    opened_at: AwareDatetime
    occurrences: int = Field(ge=1)
    escalations: int = Field(ge=0)
    ack_due_at: AwareDatetime | None = None
    by: Id | None = Field(None, description="Who acknowledged or resolved it (a back-office user id)")
    note: str = Field("", max_length=500)


@message("BuyerFlagged")
class BuyerFlagged(Contract):
    """A buyer passed the shop's serial-returner threshold; the inputs say why."""

    shop_id: Id
    buyer_id: Id
    ticket_id: Id = Field(description="The ticket whose opening passed the threshold")
    window_days: int = Field(ge=1)
    tickets_in_window: int = Field(ge=0)
    orders_in_window: int = Field(ge=0)
    max_tickets: int = Field(ge=1)
    max_rate_percent: int = Field(ge=1)
    min_orders_for_rate: int = Field(ge=1)
    reason: str = Field(max_length=300)
    flagged_at: AwareDatetime


class LineState(StrEnum):
    NONE = "NONE"
    IN_PROGRESS = "IN_PROGRESS"  # 售后中
    PARTLY_REFUNDED = "PARTLY_REFUNDED"  # 部分退款
    REFUNDED = "REFUNDED"  # 已退款
    CANCELLED = "CANCELLED"  # 已取消
    EXCHANGED = "EXCHANGED"  # 已换货
    REPAIRED = "REPAIRED"  # 已维修


@message("LineAfterSalesChanged")
class LineAfterSalesChanged(Contract):
    """One order line's after-sales state after a change, for the order page (售后中 / 已退款)."""

    order_id: Id
    line_no: int = Field(ge=1)
    sku: Id
    quantity: int = Field(ge=1, description="Units the line was ordered with")
    state: LineState
    label: str = Field(max_length=16, description="What the order page shows, in Chinese")
    in_progress_types: list[AfterSalesType] = Field(default_factory=list)
    in_progress_units: int = Field(0, ge=0)
    refunded_units: int = Field(0, ge=0)
    refunded: Money
    exchanged_units: int = Field(0, ge=0)
    repaired_units: int = Field(0, ge=0)
    ticket_id: Id = Field(description="The ticket whose change this is")


class Count(Contract):
    key: str = Field(max_length=128)
    value: int


@message("DailyFiguresChanged")
class DailyFiguresChanged(Contract):
    """A shop's after-sales figures of one day, as they stand (the latest replaces earlier ones)."""

    shop_id: Id
    day: date
    units_sold: int = Field(ge=0)
    units_in_tickets: int = Field(ge=0)
    tickets_opened: int = Field(ge=0)
    refunded: list[Money] = Field(default_factory=list, description="Refunded per currency")
    refunds_completed: int = Field(ge=0)
    refunds_failed: int = Field(ge=0)
    refunds_retried: int = Field(ge=0)
    sla_breaches: list[Count] = Field(default_factory=list, description="Per ticket state")
    reasons: list[Count] = Field(default_factory=list, description="Per type/reason")
    integration_errors: list[Count] = Field(default_factory=list, description="Per system/kind (ERP, WMS)")
    dead_letters: list[Count] = Field(default_factory=list, description="Per source topic/reason code")
