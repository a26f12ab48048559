"""Refund arithmetic in integer cents.

A line of ``q`` units paid ``P`` cents splits into ``q`` unit amounts of ``P // q`` cents, the
remainder ``P % q`` going one cent each to the *last* units. Each ticket takes specific unit
positions, so units held by different tickets never overlap and the caps of any set of
tickets on a line add up to at most ``P`` — exactly ``P`` when every unit is refunded.
"""

from __future__ import annotations

from collections.abc import Iterable

from .settlement import Amounts, refund_adjustment


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
    picked: list[int] = []
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
    return Amounts(paid_cents, platform_subsidy_cents, platform_fee_cents).net_cents


class LedgerLine:
    """What one order line was paid, and how much of it is reserved (in flight) or refunded.

    Units count only for refunds that paid what the units were still worth: a compensation moves
    cents, not units."""

    __slots__ = (
        "paid_cents",
        "quantity",
        "refunded_cents",
        "refunded_units",
        "reserved_cents",
        "reserved_units",
    )

    def __init__(self, paid_cents: int, quantity: int, reserved_cents: int = 0, reserved_units: int = 0,
                 refunded_cents: int = 0, refunded_units: int = 0) -> None:
        self.paid_cents = paid_cents
        self.quantity = quantity
        self.reserved_cents = reserved_cents
        self.reserved_units = reserved_units
        self.refunded_cents = refunded_cents
        self.refunded_units = refunded_units

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class RefundLedger:
    """Per order: the invariant Σ refunds of a line ≤ its paid amount, reservations included.

    A refund reserves its amounts before the payment channel is asked, so two refunds racing
    for the last units of a line cannot both pass; a refund that finally fails releases them.
    """

    def __init__(self, lines: dict[int, LedgerLine], shipping_fee_cents: int,
                 shipping_refunded_cents: int = 0, *, order_id: str = "", settlement_cents: int = 0,
                 settled_refund_cents: int = 0, close_requested: bool = False) -> None:
        self.order_id = order_id
        self.lines = lines
        self.shipping_fee_cents = shipping_fee_cents
        self.shipping_refunded_cents = shipping_refunded_cents
        self.settlement_cents = settlement_cents
        self.settled_refund_cents = settled_refund_cents
        self.close_requested = close_requested

    def settle(self, order: Amounts, refund_cents: int) -> tuple[Amounts, int, int]:
        """A completed refund comes off the merchant's settlement, the platform's subsidy and fee
        recomputed in proportion (``domain.settlement``); returns the adjustment and the settlement
        before and after it."""
        adjustment = refund_adjustment(order, self.settled_refund_cents, refund_cents)
        before = self.settlement_cents
        self.settled_refund_cents += refund_cents
        self.settlement_cents += adjustment.net_cents
        return adjustment, before, self.settlement_cents

    def request_close(self) -> bool:
        """Whether the order should now be closed: every unit refunded, not asked for before."""
        if not self.fully_refunded or self.close_requested:
            return False
        self.close_requested = True
        return True

    def reserve(self, amounts: dict[int, tuple[int, int]], shipping_cents: int = 0) -> None:
        """``amounts``: line_no → (cents, units). Raises ``RefundExceedsPaid`` and changes nothing."""
        from .errors import RefundExceedsPaid

        for line_no, (cents, units) in amounts.items():
            line = self.lines.get(line_no)
            if line is None:
                raise RefundExceedsPaid(f"Line {line_no} is not part of this order.")
            if cents < 0 or units < 0:
                raise RefundExceedsPaid("Refund amounts cannot be negative.")
            if line.reserved_cents + cents > line.paid_cents:
                raise RefundExceedsPaid(
                    f"Line {line_no}: refunding {cents} more cents would exceed the "
                    f"{line.paid_cents} cents paid ({line.reserved_cents} already refunded or in flight).")
            if line.reserved_units + units > line.quantity:
                raise RefundExceedsPaid(f"Line {line_no}: more units refunded than bought.")
        if self.shipping_refunded_cents + shipping_cents > self.shipping_fee_cents:
            raise RefundExceedsPaid("Shipping would be refunded twice.")
        for line_no, (cents, units) in amounts.items():
            self.lines[line_no].reserved_cents += cents
            self.lines[line_no].reserved_units += units
        self.shipping_refunded_cents += shipping_cents

    def release(self, amounts: dict[int, tuple[int, int]], shipping_cents: int = 0) -> None:
        for line_no, (cents, units) in amounts.items():
            self.lines[line_no].reserved_cents -= cents
            self.lines[line_no].reserved_units -= units
        self.shipping_refunded_cents -= shipping_cents

    def confirm(self, amounts: dict[int, tuple[int, int]]) -> None:
        for line_no, (cents, units) in amounts.items():
            self.lines[line_no].refunded_cents += cents
            self.lines[line_no].refunded_units += units

    @property
    def leaving_cents(self) -> int:
        """Everything refunded or in flight for the order, goods and shipping."""
        return sum(line.reserved_cents for line in self.lines.values()) + self.shipping_refunded_cents

    def all_units_reserved_with(self, amounts: dict[int, tuple[int, int]]) -> bool:
        """Would every unit of the order be back or stopped, and its paid amount refunded, once
        these amounts are?"""
        return all(line.reserved_units + amounts.get(no, (0, 0))[1] >= line.quantity
                   and line.reserved_cents + amounts.get(no, (0, 0))[0] >= line.paid_cents
                   for no, line in self.lines.items())

    @property
    def fully_refunded(self) -> bool:
        """Every unit refunded in full, money as well as units: a compensation (a refund-only below
        what the unit is worth) leaves the unit with the buyer and the order open."""
        return all(line.refunded_units >= line.quantity and line.refunded_cents >= line.paid_cents
                   for line in self.lines.values())
