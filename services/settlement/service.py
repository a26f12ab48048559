"""Settlement use cases: each order enters the merchant's statement once, when it completes or
its last after-sales ends (``domain.settlement``); every completed refund finance settles is a
line of its own, waiting for the order when it came first. Days are the reporting time zone's,
taken from when each fact happened (not from when it was consumed), so a statement does not
depend on consumer lag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from contracts import Envelope
from contracts import aftersales as c
from contracts import orders as o
from contracts.ops import SettlementAdjusted, SettlementKind
from services.common.orders import order_currency
from services.common.routes import Deps
from services.domain.model import FINAL_STATUSES, TicketStatus
from services.domain.settlement import (
    Amounts,
    CyclePeriod,
    EntryKind,
    SettlementOrder,
    StatementEntry,
    StatementTotals,
    totals,
)

from .repository import Entry, SettlementUnitOfWork


def _day(at: datetime, deps: Deps) -> date:
    return at.astimezone(ZoneInfo(deps.settings.reporting_timezone)).date()


async def order_placed(envelope: Envelope[o.OrderPlaced], uow: SettlementUnitOfWork, deps: Deps) -> None:
    placed = envelope.payload
    order = await uow.orders.get(placed.order_id)
    order.shop_id, order.currency = placed.shop_id, order_currency(placed)
    paid = sum(ln.paid.cents for ln in placed.lines) + placed.shipping_fee.cents
    order.amounts = Amounts(paid, placed.platform_subsidy.cents, placed.platform_fee.cents)
    await _enter_if_ready(uow, order, envelope, deps)


async def order_paid(envelope: Envelope[o.OrderPaid], uow: SettlementUnitOfWork, deps: Deps) -> None:
    order = await uow.orders.get(envelope.payload.order_id)
    order.paid = True
    await _enter_if_ready(uow, order, envelope, deps)


async def order_completed(envelope: Envelope[o.OrderCompleted], uow: SettlementUnitOfWork, deps: Deps) -> None:
    """The buyer confirmed receipt: a completed order was paid, whatever else arrived first."""
    order = await uow.orders.get(envelope.payload.order_id)
    order.paid = order.completed = True
    await _enter_if_ready(uow, order, envelope, deps)


async def order_shipped(envelope: Envelope[o.OrderShipped], uow: SettlementUnitOfWork, deps: Deps) -> None:
    order = await uow.orders.get(envelope.payload.order_id)
    order.paid = True  # nothing ships unpaid
    await uow.orders.save(order)


async def order_closed(envelope: Envelope[o.OrderClosed], uow: SettlementUnitOfWork, deps: Deps) -> None:
    """Closed after its money went back (or never paid): it enters netting to what was kept."""
    order = await uow.orders.get(envelope.payload.order_id)
    order.closed = True
    await _enter_if_ready(uow, order, envelope, deps)


def holds_the_order(opened: c.TicketOpened) -> bool:
    """A ticket that opens unfinished holds its order out of the statement (a cancelled unpaid
    order's opens finished: nothing to hold for). The route's ``only``, as is ``ends``."""
    return TicketStatus(opened.ticket.status) not in FINAL_STATUSES


def ends(event: c.TicketStatusChanged) -> bool:
    return TicketStatus(event.to_status) in FINAL_STATUSES


async def ticket_opened(envelope: Envelope[c.TicketOpened], uow: SettlementUnitOfWork, deps: Deps) -> None:
    if not holds_the_order(envelope.payload):
        return
    view = envelope.payload.ticket
    order = await uow.orders.get(view.order_id)
    order.open_tickets.add(view.ticket_id)
    await uow.orders.save(order)


async def ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: SettlementUnitOfWork, deps: Deps) -> None:
    """An after-sales that ends releases its order; the last to end enters it."""
    event = envelope.payload
    if not ends(event):
        return
    order = await uow.orders.get(event.ticket.order_id)
    order.open_tickets.discard(event.ticket.ticket_id)
    await _enter_if_ready(uow, order, envelope, deps)


async def settlement_adjusted(envelope: Envelope[SettlementAdjusted], uow: SettlementUnitOfWork,
                              deps: Deps) -> None:
    event = envelope.payload
    order = await uow.orders.get(event.order_id)
    kind = EntryKind.COMPENSATION if event.kind is SettlementKind.COMPENSATION else EntryKind.REFUND
    amounts = Amounts(-event.refund.cents, -event.subsidy_taken_back.cents, -event.fee_given_back.cents)
    entry = Entry(envelope.event_id, event.order_id, event.shop_id, event.ticket_id, kind, event.refund.currency,
                  amounts, envelope.occurred_at)
    await uow.entries.add(entry, _day(envelope.occurred_at, deps) if order.entered else None)


async def _enter_if_ready(uow: SettlementUnitOfWork, order: SettlementOrder, cause: Envelope[Any],
                          deps: Deps) -> None:
    if not order.ready_to_enter() or order.amounts is None or order.shop_id is None:
        await uow.orders.save(order)
        return
    day = _day(cause.occurred_at, deps)
    order.entered = True
    await uow.entries.add(Entry(cause.event_id, order.order_id, order.shop_id, None, EntryKind.ORDER,
                                order.currency, order.amounts, cause.occurred_at), day)
    await uow.entries.enter_waiting(order.order_id, day)
    await uow.orders.save(order, entered_on=day)


@dataclass(frozen=True)
class Statement:
    """One shop's statement of one cycle, and what is held back from it for now."""

    shop_id: str
    cycle: CyclePeriod
    payable_on: date
    entries: list[StatementEntry]
    totals: list[StatementTotals]
    held: list[SettlementOrder]


async def statement(uow: SettlementUnitOfWork, deps: Deps, shop_id: str, cycle: CyclePeriod) -> Statement:
    """``aftersales settlement statement``: the lines entered in the cycle, their totals per
    currency, the day it is paid (T+n, the shop's policy) and the orders held back."""
    entries = await uow.entries.statement(shop_id, cycle.first, cycle.last)
    delay = deps.settings.policy_for(shop_id).settlement_delay_days
    return Statement(shop_id, cycle, cycle.payable_on(delay), entries, totals(entries),
                     await uow.orders.held(shop_id))
