"""Value types of the after-sales domain (the same names and values as the contracts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AfterSalesType(StrEnum):
    CANCEL = "CANCEL"
    REFUND_ONLY = "REFUND_ONLY"
    RETURN_AND_REFUND = "RETURN_AND_REFUND"
    EXCHANGE = "EXCHANGE"
    REPAIR = "REPAIR"


MONEY_TYPES = frozenset({AfterSalesType.REFUND_ONLY, AfterSalesType.RETURN_AND_REFUND})
GOODS_BACK_TYPES = frozenset(
    {AfterSalesType.RETURN_AND_REFUND, AfterSalesType.EXCHANGE, AfterSalesType.REPAIR})


class TicketStatus(StrEnum):
    PENDING_REVIEW = "PENDING_REVIEW"
    PENDING_MANAGER = "PENDING_MANAGER"
    PENDING_REFUND = "PENDING_REFUND"
    REFUNDING = "REFUNDING"
    REFUND_FAILED = "REFUND_FAILED"
    AWAITING_RETURN = "AWAITING_RETURN"
    AWAITING_RECEIPT = "AWAITING_RECEIPT"
    INTERVENTION = "INTERVENTION"
    AWAITING_RESHIPMENT = "AWAITING_RESHIPMENT"
    IN_REPAIR = "IN_REPAIR"
    RESHIPPED = "RESHIPPED"
    SENDING_BACK = "SENDING_BACK"  # the ticket ended while the warehouse held the goods: they go back
    COMPLETED = "COMPLETED"
    CLOSED = "CLOSED"


FINAL_STATUSES = frozenset({TicketStatus.COMPLETED, TicketStatus.CLOSED})


class Role(StrEnum):
    BUYER = "buyer"
    OPS = "ops"
    FINANCE = "finance"
    MANAGER = "manager"
    WAREHOUSE = "warehouse"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    role: Role
    id: str


SYSTEM = Actor(Role.SYSTEM, "system")


class OrderState(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    COMPLETED = "COMPLETED"
    CLOSED = "CLOSED"


class Inspection(StrEnum):
    PASSED = "PASSED"
    WRONG_ITEM = "WRONG_ITEM"
    DAMAGED_BY_BUYER = "DAMAGED_BY_BUYER"
    FEWER_UNITS = "FEWER_UNITS"


class InterceptState(StrEnum):
    NONE = "NONE"
    REQUESTED = "REQUESTED"
    INTERCEPTED = "INTERCEPTED"
    ALREADY_DISPATCHED = "ALREADY_DISPATCHED"
    RELEASED = "RELEASED"  # the ticket ended without a refund: the held shipment may go on
