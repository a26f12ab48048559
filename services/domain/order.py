"""The order as intake sees it: a projection of the upstream order system's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .model import OrderState


@dataclass
class OrderLine:
    line_no: int
    sku: str
    quantity: int
    unit_price_cents: int
    paid_cents: int
    category: str = ""
    coupon_cents: int = 0
    points_cents: int = 0


class Applied(StrEnum):
    APPLIED = "APPLIED"
    STALE = "STALE"  # already reflected (duplicate or superseded): ignore
    NOT_YET = "NOT_YET"  # arrived before what it follows: park it
    LATE_PAYMENT = "LATE_PAYMENT"  # paid after the order closed: the money must go back


_RANK = {
    OrderState.PENDING_PAYMENT: 0,
    OrderState.PAID: 1,
    OrderState.SHIPPED: 2,
    OrderState.COMPLETED: 3,
}


@dataclass
class Order:
    order_id: str
    shop_id: str
    buyer_id: str
    placed_at: datetime
    lines: list[OrderLine]
    shipping_fee_cents: int = 0
    platform_subsidy_cents: int = 0
    platform_fee_cents: int = 0
    state: OrderState = OrderState.PENDING_PAYMENT
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    completed_at: datetime | None = None
    closed_at: datetime | None = None
    close_requested: bool = False
    version: int = 0
    currency: str = "CNY"
    _lines_by_no: dict[int, OrderLine] = field(default_factory=dict, repr=False)

    def line(self, line_no: int) -> OrderLine | None:
        if not self._lines_by_no:
            self._lines_by_no = {ln.line_no: ln for ln in self.lines}
        return self._lines_by_no.get(line_no)

    def _advance(self, to: OrderState) -> Applied:
        if self.state == OrderState.CLOSED:
            return Applied.STALE
        have, want = _RANK[self.state], _RANK[to]
        if want <= have:
            return Applied.STALE
        if want > have + 1:
            return Applied.NOT_YET
        self.state = to
        self.version += 1
        return Applied.APPLIED

    def mark_paid(self, at: datetime) -> Applied:
        if self.state == OrderState.CLOSED and self.paid_at is None:
            self.paid_at = at  # the order stays closed; the payment is recorded, to be refunded
            self.version += 1
            return Applied.LATE_PAYMENT
        result = self._advance(OrderState.PAID)
        if result == Applied.APPLIED:
            self.paid_at = at
        return result

    def mark_shipped(self, at: datetime) -> Applied:
        result = self._advance(OrderState.SHIPPED)
        if result == Applied.APPLIED:
            self.shipped_at = at
        return result

    def mark_completed(self, at: datetime) -> Applied:
        result = self._advance(OrderState.COMPLETED)
        if result == Applied.APPLIED:
            self.completed_at = at
        return result

    def mark_closed(self, at: datetime) -> Applied:
        if self.state == OrderState.CLOSED:
            return Applied.STALE
        self.state = OrderState.CLOSED
        self.closed_at = at
        self.version += 1
        return Applied.APPLIED
