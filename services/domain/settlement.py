"""The merchant's settlement (seed 004, DOMAIN.md "Settlement").

The buyer pays the platform; the merchant is settled ``paid + platform subsidy - platform fee``
per order. A refund gives back part of what was paid, and the platform then takes back the
same part of its subsidy and gives back the same part of its fee: both are recomputed in
proportion to what is still kept. Recomputing from the running total refunded (rather than
rounding each refund's share on its own) makes the shares of any sequence of refunds add up to
the whole, to the cent: a fully refunded order settles at exactly zero.

An order enters a statement when it completes (the buyer confirmed receipt) or when its last
after-sales ends, whichever is later; a closed order (fully refunded) enters when it closes
and nets to zero. Refunds before the entry enter with it; later refunds enter when they
complete. Statements run in daily, weekly or monthly cycles and are paid T+1 or later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum


class SettlementCycle(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class EntryKind(StrEnum):
    ORDER = "ORDER"  # the order's settlement, entered once
    REFUND = "REFUND"  # a refund that took units back (or the whole amount of a line)
    COMPENSATION = "COMPENSATION"  # money back while the goods stay with the buyer (折价补偿)


@dataclass(frozen=True)
class Amounts:
    """One order's settlement figures, or one adjustment of them (then negative where taken back)."""

    paid_cents: int
    subsidy_cents: int
    fee_cents: int

    @property
    def net_cents(self) -> int:
        return self.paid_cents + self.subsidy_cents - self.fee_cents

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(self.paid_cents - other.paid_cents, self.subsidy_cents - other.subsidy_cents,
                       self.fee_cents - other.fee_cents)


def _share(total_cents: int, kept_cents: int, paid_cents: int) -> int:
    """``total x kept / paid``, rounded half up."""
    return (2 * total_cents * kept_cents + paid_cents) // (2 * paid_cents)


def kept_after(order: Amounts, refunded_cents: int) -> Amounts:
    """What the merchant is settled once ``refunded_cents`` of the order's paid amount went back."""
    if not 0 <= refunded_cents <= order.paid_cents:
        raise ValueError(f"refunded {refunded_cents} of an order that paid {order.paid_cents}")
    if refunded_cents == 0:
        return order
    kept = order.paid_cents - refunded_cents
    return Amounts(kept, _share(order.subsidy_cents, kept, order.paid_cents),
                   _share(order.fee_cents, kept, order.paid_cents))


def refund_adjustment(order: Amounts, refunded_before_cents: int, refund_cents: int) -> Amounts:
    """How one completed refund changes the settlement (negative paid and subsidy, the fee given
    back as a negative fee), given what the order had refunded before it."""
    return kept_after(order, refunded_before_cents + refund_cents) - kept_after(order, refunded_before_cents)


@dataclass
class SettlementOrder:
    """What the settlement keeps of one order until it is entered: its figures, whether it was
    paid, completed or closed, and which after-sales tickets are still open on it."""

    order_id: str
    shop_id: str | None = None
    currency: str = "CNY"
    amounts: Amounts | None = None  # known from OrderPlaced
    paid: bool = False
    completed: bool = False
    closed: bool = False
    open_tickets: set[str] = field(default_factory=set)
    entered: bool = False

    def ready_to_enter(self) -> bool:
        """Enters once: completed or closed, paid, its figures known, and no after-sales open."""
        return (not self.entered and self.amounts is not None and self.shop_id is not None and self.paid
                and (self.completed or self.closed) and not self.open_tickets)

    def held_because(self) -> str:
        """Why an order is not in a statement yet (for the statement's held list)."""
        if self.entered or not self.paid:
            return ""  # entered, or nothing was paid yet (or ever: a cancelled unpaid order)
        if self.open_tickets:
            return "after-sales open"
        if not (self.completed or self.closed):
            return "not completed"
        return "" if self.ready_to_enter() else "order facts missing"


@dataclass(frozen=True)
class CyclePeriod:
    """One settlement cycle: its first and last day (reporting days), and when it is paid."""

    kind: SettlementCycle
    first: date
    last: date

    @property
    def label(self) -> str:
        if self.kind is SettlementCycle.DAILY:
            return self.first.isoformat()
        if self.kind is SettlementCycle.WEEKLY:
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first.year}-{self.first.month:02d}"

    def payable_on(self, delay_days: int) -> date:
        """Paid T+n: n days after the cycle's last day (n ≥ 1)."""
        return self.last + timedelta(days=max(delay_days, 1))

    @classmethod
    def containing(cls, kind: SettlementCycle, day: date) -> CyclePeriod:
        if kind is SettlementCycle.DAILY:
            return cls(kind, day, day)
        if kind is SettlementCycle.WEEKLY:
            monday = day - timedelta(days=day.weekday())
            return cls(kind, monday, monday + timedelta(days=6))
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return cls(kind, first, following - timedelta(days=1))

    @classmethod
    def parse(cls, text: str) -> CyclePeriod:
        """``2026-12-05`` (a day), ``2026-W49`` (an ISO week) or ``2026-12`` (a month)."""
        text = text.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return cls.containing(SettlementCycle.DAILY, date.fromisoformat(text))
            if found := re.fullmatch(r"(\d{4})-W(\d{2})", text):
                return cls.containing(SettlementCycle.WEEKLY,
                                      date.fromisocalendar(int(found[1]), int(found[2]), 1))
            if found := re.fullmatch(r"(\d{4})-(\d{2})", text):
                return cls.containing(SettlementCycle.MONTHLY, date(int(found[1]), int(found[2]), 1))
        except ValueError as error:
            raise ValueError(f"no such cycle {text!r}: {error}") from None
        raise ValueError(f"a cycle is a day (2026-12-05), an ISO week (2026-W49) or a month (2026-12), "
                         f"not {text!r}")


@dataclass(frozen=True)
class StatementEntry:
    entered_on: date
    order_id: str
    ticket_id: str | None
    kind: EntryKind
    currency: str
    amounts: Amounts


@dataclass(frozen=True)
class StatementTotals:
    currency: str
    orders: int
    paid_cents: int
    subsidy_cents: int
    fee_cents: int
    refunded_cents: int  # given back to buyers (refunds and compensations), a positive figure
    net_cents: int


def totals(entries: list[StatementEntry]) -> list[StatementTotals]:
    """Per currency: orders entered, the paid/subsidy/fee sums (after adjustments), what was given
    back, and the net the merchant is paid for the cycle."""
    found: dict[str, list[StatementEntry]] = {}
    for entry in entries:
        found.setdefault(entry.currency, []).append(entry)
    return [StatementTotals(
        currency=currency,
        orders=sum(1 for e in group if e.kind is EntryKind.ORDER),
        paid_cents=sum(e.amounts.paid_cents for e in group),
        subsidy_cents=sum(e.amounts.subsidy_cents for e in group),
        fee_cents=sum(e.amounts.fee_cents for e in group),
        refunded_cents=-sum(e.amounts.paid_cents for e in group if e.kind is not EntryKind.ORDER),
        net_cents=sum(e.amounts.net_cents for e in group)) for currency, group in sorted(found.items())]
