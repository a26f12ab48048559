"""An upstream OrderPlaced as domain order lines: intake projects the order from it, finance keeps
its own copy of what was paid (each from the events it consumed, never from the other's table)."""

from __future__ import annotations

from contracts import orders as o
from services.domain.order import OrderLine


def order_lines(placed: o.OrderPlaced) -> list[OrderLine]:
    return [OrderLine(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity, unit_price_cents=ln.unit_price.cents,
                      paid_cents=ln.paid.cents, category=ln.category, coupon_cents=ln.coupon_deduction.cents,
                      points_cents=ln.points_deduction.cents) for ln in placed.lines]
