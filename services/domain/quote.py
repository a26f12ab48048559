"""The refund a buyer is offered before asking (seeds 002 and 003: show the amount, and what is
not refunded, before the request is sent).

A quote is the same plan a request would get (``eligibility.assess``: the same units, the same
cap per line, the same refusals), so the amount quoted is the amount the ticket opens with. Per
line it shows, for the units asked about:

- ``list``: unit price × units, what the goods cost before any discount;
- ``refund``: what goes back to the payment route (the ticket's cap: what those units were paid,
  less what a compensation already paid back);
- ``promotion``: the shop's discounts on those units; the buyer never paid it, nothing comes back;
- ``coupon`` and ``points``: the coupon's and the virtual currency's share of those units; never
  refunded as money. The virtual currency goes back through the marketing system when the shop's
  policy says so (``Policy.return_virtual_currency``, seed 004's default), the coupon when a
  reviewer agrees (DOMAIN.md's refund flags).

Each of paid, promotion, coupon and points is split over the line's units like a paid amount
(``refunds.unit_amount``: the odd cents to the last units), the way finance splits them, so the
quotes of a line's units in any split add up to the line's figures exactly; for one unit the four
shares may differ from its list price by the odd cents of each split.

Shipping is quoted only where it comes back without anyone deciding: a money request before
shipment that, with the order's other refunds, covers every unit (``refunds.shipping_refund``);
otherwise it is 0 and ``shipping_if_reviewer_agrees`` says what a reviewer could add.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .eligibility import Claim, ClaimKind, PlannedLine
from .model import MONEY_TYPES, AfterSalesType
from .order import Order
from .refunds import proportional_share, shipping_refund


@dataclass(frozen=True)
class QuotedLine:
    line_no: int
    sku: str
    quantity: int
    list_cents: int
    refund_cents: int
    promotion_cents: int
    coupon_cents: int
    points_cents: int


@dataclass(frozen=True)
class Quote:
    lines: tuple[QuotedLine, ...]
    shipping_cents: int
    shipping_if_reviewer_agrees_cents: int
    currency: str

    @property
    def refund_cents(self) -> int:
        return sum(line.refund_cents for line in self.lines)

    @property
    def total_cents(self) -> int:
        return self.refund_cents + self.shipping_cents

    @property
    def not_refunded_cents(self) -> int:
        """Discounts and deductions that do not come back as money."""
        return sum(line.promotion_cents + line.coupon_cents + line.points_cents for line in self.lines)


def quote(order: Order, ticket_type: AfterSalesType, planned: Iterable[PlannedLine],
          money_claims: Iterable[Claim], *, before_shipment: bool) -> Quote:
    """The offer for ``planned`` (``assess``'s plan) on ``order``; ``money_claims`` are the units
    the order's refund tickets hold (open or refunded), which decide whether shipping comes back."""
    money = ticket_type in MONEY_TYPES
    lines = []
    covered: dict[int, set[int]] = {}  # units refunded, or asked back, by money tickets (with this one)
    for claim in money_claims:
        if claim.kind in (ClaimKind.REFUNDED, ClaimKind.ACTIVE):
            covered.setdefault(claim.line_no, set()).update(claim.positions)
    for plan in planned:
        line = order.line(plan.line_no)
        if line is None:  # assess checked every line; a plan of another order is a caller's bug
            raise ValueError(f"line {plan.line_no} is not on order {order.order_id}")
        coupon = proportional_share(line.coupon_cents, line.quantity, plan.positions)
        points = proportional_share(line.points_cents, line.quantity, plan.positions)
        promotion = proportional_share(max(line.unit_price_cents * line.quantity - line.paid_cents
                                           - line.coupon_cents - line.points_cents, 0), line.quantity, plan.positions)
        refund = plan.cap_cents if money else 0
        lines.append(QuotedLine(
            line_no=plan.line_no, sku=plan.sku, quantity=plan.quantity,
            list_cents=line.unit_price_cents * plan.quantity,
            refund_cents=refund, promotion_cents=promotion, coupon_cents=coupon, points_cents=points))
        if money:
            covered.setdefault(plan.line_no, set()).update(plan.positions)
    whole_order = all(len(covered.get(line.line_no, ())) >= line.quantity for line in order.lines)
    automatic = shipping_refund(shipping_fee_cents=order.shipping_fee_cents, already_refunded_cents=0,
                                before_shipment=before_shipment, order_fully_refunded_after_this=whole_order,
                                reviewer_flag=False) if money else 0
    return Quote(lines=tuple(lines), shipping_cents=automatic,
                 shipping_if_reviewer_agrees_cents=0 if automatic or not money else order.shipping_fee_cents,
                 currency=order.currency)
