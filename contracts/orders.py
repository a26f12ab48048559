"""Facts published by the upstream order system, and the one command it accepts from us."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field

from .envelope import Contract, Id, Money, message

Quantity = Annotated[int, Field(ge=1, le=10_000, strict=True)]


class OrderLine(Contract):
    """One line; ``paid`` is after discount allocation (coupons, promotions, points spread upstream)."""

    line_no: int = Field(ge=1, le=1000)
    sku: Id
    category: str = Field(default="", max_length=64)
    quantity: Quantity
    unit_price: Money
    paid: Money = Field(description="Paid for the whole line after discount allocation")
    coupon_deduction: Money = Field(default=Money(cents=0), description="Coupon share, not cash")
    points_deduction: Money = Field(default=Money(cents=0), description="Points share, not cash")


@message("OrderPlaced")
class OrderPlaced(Contract):
    order_id: Id
    shop_id: Id
    buyer_id: Id
    placed_at: AwareDatetime
    lines: list[OrderLine] = Field(min_length=1, max_length=200)
    shipping_fee: Money = Money(cents=0)
    platform_subsidy: Money = Money(cents=0)
    platform_fee: Money = Money(cents=0)


@message("OrderPaid")
class OrderPaid(Contract):
    order_id: Id
    paid_at: AwareDatetime


@message("OrderShipped")
class OrderShipped(Contract):
    order_id: Id
    shipped_at: AwareDatetime


@message("OrderCompleted")
class OrderCompleted(Contract):
    """The buyer confirmed receipt (交易成功); the after-sales window starts here."""

    order_id: Id
    completed_at: AwareDatetime


@message("OrderClosed")
class OrderClosed(Contract):
    order_id: Id
    closed_at: AwareDatetime
    reason: str = Field(default="", max_length=200)


@message("CloseOrder")
class CloseOrder(Contract):
    """Asks the order system to close an order (交易关闭): cancelled or fully refunded."""

    order_id: Id
    reason: str = Field(max_length=200)
    ticket_id: Id | None = None
