"""Small builders for domain objects in unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.domain.model import AfterSalesType, OrderState
from services.domain.order import Order, OrderLine
from services.domain.ticket import Ticket, TicketLine

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def order(state: OrderState = OrderState.PAID, *, lines: list[OrderLine] | None = None,
          completed_at: datetime | None = None, shipping: int = 800) -> Order:
    o = Order(order_id="O1", shop_id="S1", buyer_id="B1", placed_at=T0,
              lines=lines or [OrderLine(1, "SKU-A", 3, 3400, 10_000), OrderLine(2, "SKU-B", 1, 5000, 4500)],
              shipping_fee_cents=shipping, state=state)
    if state != OrderState.PENDING_PAYMENT:
        o.paid_at = T0 + timedelta(minutes=1)
    if state in (OrderState.SHIPPED, OrderState.COMPLETED):
        o.shipped_at = T0 + timedelta(hours=5)
    if state == OrderState.COMPLETED:
        o.completed_at = completed_at or T0 + timedelta(days=2)
    return o


def ticket(type_: AfterSalesType = AfterSalesType.REFUND_ONLY, *, refund: int = 6666, cap: int = 6666,
           quantity: int = 2, before_shipment: bool = False, applied_at: datetime | None = None) -> Ticket:
    return Ticket(
        ticket_id="T1", ticket_no="AS1", order_id="O1", shop_id="S1", buyer_id="B1", type=type_,
        lines=[TicketLine(1, "SKU-A", quantity, tuple(range(quantity)), cap, refund, 10_000, 3)],
        applied_at=applied_at or T0 + timedelta(hours=1), reason_code="NO_LONGER_WANTED",
        before_shipment=before_shipment, paid_at=T0 + timedelta(minutes=1))
