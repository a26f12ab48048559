"""An upstream OrderPlaced as domain order lines: intake projects the order from it, finance keeps
its own copy of what was paid (each from the events it consumed, never from the other's table)."""

from __future__ import annotations

from contracts import orders as o
from services.common.runtime import Unprocessable
from services.domain.order import OrderLine


class MixedCurrency(Unprocessable):
    """An order whose amounts are not all in one currency: no refund could be computed for it, so
    every consumer dead-letters it (``MIXED_CURRENCY``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, code="MIXED_CURRENCY")


def order_currency(placed: o.OrderPlaced) -> str:
    """The one currency of every amount of the order; ``MixedCurrency`` if there are several."""
    amounts = [placed.shipping_fee, placed.platform_subsidy, placed.platform_fee]
    for ln in placed.lines:
        amounts += [ln.unit_price, ln.paid, ln.coupon_deduction, ln.points_deduction]
    # a zero amount left at its default says nothing about the currency; what a line paid always does
    currencies = {m.currency for m in amounts if m.cents} | {ln.paid.currency for ln in placed.lines}
    if len(currencies) > 1:
        raise MixedCurrency(f"order {placed.order_id} mixes currencies {', '.join(sorted(currencies))}")
    return currencies.pop() if currencies else "CNY"


def order_lines(placed: o.OrderPlaced) -> list[OrderLine]:
    return [OrderLine(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity, unit_price_cents=ln.unit_price.cents,
                      paid_cents=ln.paid.cents, category=ln.category, coupon_cents=ln.coupon_deduction.cents,
                      points_cents=ln.points_deduction.cents) for ln in placed.lines]
