"""Refund arithmetic in integer cents.

A line of ``q`` units paid ``P`` cents splits into ``q`` unit amounts of ``P // q`` cents, the
remainder ``P % q`` going one cent each to the *last* units. Each ticket takes specific unit
positions, so units held by different tickets never overlap and the caps of any set of
tickets on a line add up to at most ``P`` — exactly ``P`` when every unit is refunded.
"""

from __future__ import annotations

from collections.abc import Iterable


def unit_amount(line_paid_cents: int, line_quantity: int, position: int) -> int:
    """What unit ``position`` (0-based) of a line is worth."""
    if line_quantity <= 0 or not 0 <= position < line_quantity:
        raise ValueError("position outside the line")
    base, remainder = divmod(line_paid_cents, line_quantity)
    return base + (1 if position >= line_quantity - remainder else 0)


def cap_for_positions(line_paid_cents: int, line_quantity: int, positions: Iterable[int]) -> int:
    return sum(unit_amount(line_paid_cents, line_quantity, p) for p in positions)


def pick_free_positions(line_quantity: int, taken: set[int], wanted: int) -> tuple[int, ...]:
    """The lowest ``wanted`` positions not taken; fewer if not enough are free."""
    free = (p for p in range(line_quantity) if p not in taken)
    picked = []
    for p in free:
        if len(picked) == wanted:
            break
        picked.append(p)
    return tuple(picked)


def shipping_refund(
    *,
    shipping_fee_cents: int,
    already_refunded_cents: int,
    before_shipment: bool,
    order_fully_refunded_after_this: bool,
    reviewer_flag: bool,
) -> int:
    """Shipping is refunded once: for a whole order refunded before shipment, or when the reviewer says so."""
    if already_refunded_cents >= shipping_fee_cents:
        return 0
    if reviewer_flag or (before_shipment and order_fully_refunded_after_this):
        return shipping_fee_cents - already_refunded_cents
    return 0


def proportional_share(total_cents: int, line_quantity: int, positions: Iterable[int]) -> int:
    """A deduction (coupon, points) attributable to some units, split like the paid amount."""
    return cap_for_positions(total_cents, line_quantity, positions)


def settlement(paid_cents: int, platform_subsidy_cents: int, platform_fee_cents: int) -> int:
    """What the merchant is settled for an order."""
    return paid_cents + platform_subsidy_cents - platform_fee_cents
