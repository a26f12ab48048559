"""Which after-sales an order allows, for which units, and for how much at most."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from . import errors
from .model import FINAL_STATUSES, MONEY_TYPES, AfterSalesType, OrderState, TicketStatus
from .order import Order, OrderLine
from .policy import Policy
from .reasons import Reason, needs_evidence
from .refunds import cap_for_positions, pick_free_positions, unit_amount

ALLOWED_TYPES: dict[OrderState, frozenset[AfterSalesType]] = {
    OrderState.PENDING_PAYMENT: frozenset({AfterSalesType.CANCEL}),
    OrderState.PAID: frozenset({AfterSalesType.REFUND_ONLY}),
    OrderState.SHIPPED: frozenset(
        {AfterSalesType.REFUND_ONLY, AfterSalesType.RETURN_AND_REFUND, AfterSalesType.EXCHANGE}),
    OrderState.COMPLETED: frozenset(
        {AfterSalesType.REFUND_ONLY, AfterSalesType.RETURN_AND_REFUND, AfterSalesType.EXCHANGE,
         AfterSalesType.REPAIR}),
    OrderState.CLOSED: frozenset(),
}

_STATE_WORDS = {
    OrderState.PENDING_PAYMENT: "awaiting payment",
    OrderState.PAID: "paid and not yet shipped",
    OrderState.SHIPPED: "shipped",
    OrderState.COMPLETED: "completed",
    OrderState.CLOSED: "closed",
}


_ORDER_PROGRESS = (OrderState.PENDING_PAYMENT, OrderState.PAID, OrderState.SHIPPED, OrderState.COMPLETED)


def may_become_allowed(state: OrderState, ticket_type: AfterSalesType) -> bool:
    """Not allowed now but allowed in a later state? Then the order's facts may just be lagging."""
    if state not in _ORDER_PROGRESS or ticket_type in ALLOWED_TYPES[state]:
        return False
    later = _ORDER_PROGRESS[_ORDER_PROGRESS.index(state) + 1:]
    return any(ticket_type in ALLOWED_TYPES[s] for s in later)


class ClaimKind(StrEnum):
    ACTIVE = "ACTIVE"
    REFUNDED = "REFUNDED"
    COMPENSATED = "COMPENSATED"
    """A refund-only paid less than the units were worth: the buyer keeps them, and they stay open
    for a later return, refund or repair, worth what is left of their paid amount."""
    EXCHANGED = "EXCHANGED"


@dataclass(frozen=True)
class Claim:
    """Units of one order line held by an existing ticket (``refunded_cents``: what a compensation
    paid for them, split over its positions like a paid amount)."""

    line_no: int
    positions: tuple[int, ...]
    kind: ClaimKind
    refunded_cents: int = 0

    def compensated(self, position: int) -> int:
        """What this compensation already paid for one of its positions."""
        if self.kind != ClaimKind.COMPENSATED or position not in self.positions:
            return 0
        return unit_amount(self.refunded_cents, len(self.positions), self.positions.index(position))


def claim_kind(ticket_type: AfterSalesType, status: TicketStatus, *, paid_in_full: bool = True) -> ClaimKind | None:
    """How a ticket in this state holds its units; ``None`` frees them. ``paid_in_full``: the
    completed refund covered what the units were still worth."""
    if status not in FINAL_STATUSES:
        return ClaimKind.ACTIVE
    if status == TicketStatus.COMPLETED and ticket_type == AfterSalesType.REFUND_ONLY and not paid_in_full:
        return ClaimKind.COMPENSATED
    if status == TicketStatus.COMPLETED and ticket_type in MONEY_TYPES:
        return ClaimKind.REFUNDED
    if status == TicketStatus.COMPLETED and ticket_type == AfterSalesType.EXCHANGE:
        return ClaimKind.EXCHANGED
    return None


@dataclass(frozen=True)
class RequestedUnits:
    line_no: int
    quantity: int
    exchange_sku: str | None = None  # an exchange to another variant of the product
    exchange_unit_price_cents: int | None = None  # its list price


@dataclass(frozen=True)
class AfterSalesRequest:
    buyer_id: str
    type: AfterSalesType
    lines: tuple[RequestedUnits, ...]
    reason_code: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedLine:
    line_no: int
    sku: str
    quantity: int
    positions: tuple[int, ...]
    cap_cents: int
    line_paid_cents: int
    line_quantity: int
    exchange_sku: str | None = None


def check_type_allowed(order: Order, ticket_type: AfterSalesType, policy: Policy, now: datetime) -> None:
    if ticket_type not in ALLOWED_TYPES[order.state]:
        allowed = ", ".join(sorted(t.value for t in ALLOWED_TYPES[order.state])) or "none"
        raise errors.TypeNotAllowed(
            f"A {ticket_type.value} request is not possible while the order is "
            f"{_STATE_WORDS[order.state]} (allowed: {allowed}).")
    if order.state == OrderState.COMPLETED:
        if order.completed_at is None:
            raise errors.LifecycleViolation(f"order {order.order_id} is completed without a completion time")
        if ticket_type == AfterSalesType.REPAIR:
            if now - order.completed_at > policy.repair_warranty:
                raise errors.OutsideAfterSalesWindow(
                    f"The warranty of {policy.repair_warranty.days} days after receipt has ended.")
        elif now - order.completed_at > policy.after_sales_window:
            days = policy.after_sales_window.days
            raise errors.OutsideAfterSalesWindow(
                f"The after-sales period of {days} days after receipt has ended.")


def assess(
    order: Order,
    request: AfterSalesRequest,
    claims: Iterable[Claim],
    reason: Reason | None,
    policy: Policy,
    now: datetime,
    *,
    quoting: bool = False,
) -> list[PlannedLine]:
    """Checks every rule of a request and plans which units it takes and their refund cap.

    Raises a named ``DomainError``; returns the planned lines when every rule holds. ``quoting``:
    the buyer asks what they would be offered before sending the request, so the reason may not
    be chosen yet and photos come with the request itself.
    """
    if request.buyer_id != order.buyer_id:
        raise errors.NotYourOrder("This order does not belong to you.")
    check_type_allowed(order, request.type, policy, now)
    if not (quoting and reason is None and not request.reason_code):
        if reason is None or not reason.visible or request.type not in reason.types:
            raise errors.ReasonNotAvailable("Please choose one of the offered reasons.")
        if not quoting and needs_evidence(reason.code, request.type) and not request.evidence:
            raise errors.EvidenceRequired(f"Please add photos for the reason '{reason.label}'.")

    wanted = request.lines
    if request.type == AfterSalesType.CANCEL:
        wanted = tuple(RequestedUnits(ln.line_no, ln.quantity) for ln in order.lines)
    if not wanted:
        raise errors.InvalidQuantity("Choose at least one item.")
    if len({w.line_no for w in wanted}) != len(wanted):
        raise errors.InvalidQuantity("Each order line may appear once per request.")

    claims = list(claims)
    by_line: dict[int, dict[ClaimKind, set[int]]] = {}
    for claim in claims:
        by_line.setdefault(claim.line_no, {}).setdefault(claim.kind, set()).update(claim.positions)

    planned = []
    for want in wanted:
        line = order.line(want.line_no)
        if line is None:
            raise errors.UnknownLine(f"Order line {want.line_no} does not exist.")
        if not 1 <= want.quantity <= line.quantity:
            raise errors.InvalidQuantity(
                f"Quantity for {line.sku} must be between 1 and {line.quantity}.")
        held = by_line.get(line.line_no, {})
        active = held.get(ClaimKind.ACTIVE, set())
        refunded = held.get(ClaimKind.REFUNDED, set())
        exchanged = set() if policy.allow_after_sales_on_exchanged_units else held.get(
            ClaimKind.EXCHANGED, set())
        positions = pick_free_positions(line.quantity, active | refunded | exchanged, want.quantity)
        if len(positions) < want.quantity:
            free = len(positions)
            if active and free + len(active) >= want.quantity:
                raise errors.UnitsAlreadyInActiveTicket(
                    f"{len(active)} of {line.sku} are already in an open after-sales request.")
            if refunded and free + len(refunded - active) >= want.quantity:
                raise errors.UnitsAlreadyRefunded(f"{len(refunded)} of {line.sku} were already refunded.")
            if exchanged:
                raise errors.UnitsAlreadyExchanged(
                    f"{len(exchanged)} of {line.sku} were already exchanged.")
            raise errors.UnitsAlreadyInActiveTicket(
                f"Only {free} of {line.sku} are available for after-sales.")
        cap = 0
        if request.type in MONEY_TYPES:  # what the units are worth, less what compensations paid
            compensations = [c for c in claims if c.line_no == line.line_no and c.kind == ClaimKind.COMPENSATED]
            left_on_line = line.paid_cents - sum(c.refunded_cents for c in compensations)
            cap = max(0, min(left_on_line, cap_for_positions(line.paid_cents, line.quantity, positions)
                             - sum(c.compensated(p) for c in compensations for p in positions)))
        planned.append(PlannedLine(line.line_no, line.sku, want.quantity, positions, cap,
                                   line.paid_cents, line.quantity, _variant(request.type, line, want)))
    return planned


def _variant(ticket_type: AfterSalesType, line: OrderLine, want: RequestedUnits) -> str | None:
    """The sku an exchange ships instead (seed 004, 选错型号): another variant at the same list
    price; a different price would move money an exchange does not move, so it is refused with
    the way that does (a return, and a new order)."""
    if want.exchange_sku is None or want.exchange_sku == line.sku:
        return None
    if ticket_type != AfterSalesType.EXCHANGE:
        raise errors.VariantNotExchangeable("Only an exchange can ship another variant.")
    if want.exchange_unit_price_cents != line.unit_price_cents:
        raise errors.VariantPriceDiffers(
            f"{want.exchange_sku} does not cost what {line.sku} cost, so it cannot be exchanged for it; "
            "please ask for a return and order it instead.")
    return want.exchange_sku
