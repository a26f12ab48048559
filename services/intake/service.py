"""Intake use cases: keep the order projection, open tickets, route the buyer's follow-ups."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import DBAPIError

from contracts import Envelope, Money, decode
from contracts import admin as ad
from contracts import aftersales as c
from contracts import orders as o
from contracts.ops import DeadLetter
from contracts.topics import DLQ, REQUESTS
from services.common.failures import Failure, classify, content_hash, describe
from services.common.orders import order_currency, order_lines
from services.common.parked import Parked
from services.common.routes import Deps
from services.common.tickets import announce, save_and_announce, view
from services.domain import errors, ids
from services.domain.eligibility import (
    AfterSalesRequest,
    Claim,
    RequestedUnits,
    assess,
    claim_kind,
    may_become_allowed,
)
from services.domain.model import MONEY_TYPES, Actor, AfterSalesType, OrderState, Role
from services.domain.order import Applied, Order
from services.domain.quote import quote
from services.domain.reasons import LATE_PAYMENT
from services.domain.ticket import Ticket, TicketLine

from .repository import IntakeUnitOfWork, Orders

__all__ = [
    "ORDER_FACTS",
    "Deps",
    "apply_order_event",
    "confirm_exchange_received",
    "refuse_delivery",
    "request_after_sales",
    "request_rejected",
    "submit_return_shipment",
    "withdraw",
]

OrderFact = o.OrderPlaced | o.OrderPaid | o.OrderShipped | o.OrderCompleted | o.OrderClosed

ORDER_FACTS = frozenset({"OrderPlaced", "OrderPaid", "OrderShipped", "OrderCompleted", "OrderClosed"})


# ---------------------------------------------------------------- order projection
def _order_from(p: o.OrderPlaced) -> Order:
    """The projection of a new order; one that mixes currencies can never be refunded right, so
    it is refused here (dead-lettered with the reason), before any ticket can be opened on it."""
    return Order(currency=order_currency(p),
        order_id=p.order_id, shop_id=p.shop_id, buyer_id=p.buyer_id, placed_at=p.placed_at,
        lines=order_lines(p),
        shipping_fee_cents=p.shipping_fee.cents, platform_subsidy_cents=p.platform_subsidy.cents,
        platform_fee_cents=p.platform_fee.cents)


def _apply(order: Order, payload: object) -> Applied:
    if isinstance(payload, o.OrderPaid):
        return order.mark_paid(payload.paid_at)
    if isinstance(payload, o.OrderShipped):
        return order.mark_shipped(payload.shipped_at)
    if isinstance(payload, o.OrderCompleted):
        return order.mark_completed(payload.completed_at)
    if isinstance(payload, o.OrderClosed):
        return order.mark_closed(payload.closed_at)
    raise TypeError(type(payload).__name__)


async def apply_order_event(envelope: Envelope[OrderFact], uow: IntakeUnitOfWork, deps: Deps) -> None:
    """Applies an upstream fact; one that arrives before what it follows is parked, not lost.
    Parked facts and buyer requests waiting for this order are tried again afterwards."""
    orders = uow.orders
    payload = envelope.payload
    if isinstance(payload, o.OrderPlaced):
        order = _order_from(payload)
        if not await orders.add(order):
            return  # duplicate OrderPlaced
    else:
        found = await orders.get(payload.order_id)
        if found is None:
            await orders.park(payload.order_id, envelope.event_id, envelope.type,
                              _raw(envelope), "order not known yet")
            return
        order = found
        outcome = _apply(order, payload)
        if outcome == Applied.LATE_PAYMENT:
            await orders.save(order)
            await _refund_late_payment(order, uow, deps, envelope)
            return
        if outcome == Applied.NOT_YET:
            await orders.park(order.order_id, envelope.event_id, envelope.type, _raw(envelope),
                              f"{envelope.type} arrived while the order is {order.state.value}")
            return
        if outcome == Applied.STALE:
            return
    waiting = await orders.parked(order.order_id)
    if waiting:
        await _drain_parked(orders, order, [p for p in waiting if p.type in ORDER_FACTS])
    if waiting or not isinstance(payload, o.OrderPlaced):
        await orders.save(order)
    requests = [p for p in waiting if p.type == "RequestAfterSales"]
    if requests:
        await _retry_parked_requests(orders, order, requests, uow, deps)


async def _refund_late_payment(order: Order, uow: IntakeUnitOfWork, deps: Deps, cause: Envelope[Any]) -> None:
    """The buyer paid an order that had already closed (the payment timed out first): a system
    ticket for every unit refunds the whole payment, and ops is told (LATE_PAYMENT)."""
    now = deps.clock()
    request_id = uuid.uuid5(uuid.NAMESPACE_URL, f"late-payment:{cause.event_id}")
    new_id = ids.ticket_id(request_id)
    ticket = Ticket(
        ticket_id=new_id, ticket_no=ids.ticket_no(new_id, now), order_id=order.order_id,
        shop_id=order.shop_id, buyer_id=order.buyer_id, type=AfterSalesType.REFUND_ONLY,
        lines=[TicketLine(ln.line_no, ln.sku, ln.quantity, tuple(range(ln.quantity)), ln.paid_cents, ln.paid_cents,
                          ln.paid_cents, ln.quantity) for ln in order.lines],
        applied_at=now, reason_code=LATE_PAYMENT, paid_at=order.paid_at, currency=order.currency)
    ticket.refund_late_payment(now, deps.settings.policy_for(order.shop_id))
    await uow.tickets.add(ticket, request_id)
    uow.publish(c.TicketOpened(request_id=request_id, ticket=view(ticket)), key=order.order_id, cause=cause)
    announce(uow, ticket, cause)


async def _drain_parked(orders: Orders, order: Order, facts: list[Parked]) -> None:
    """Applies parked facts that have become valid, until none makes progress."""
    progress = True
    while progress and facts:
        progress = False
        for parked in list(facts):
            if _apply(order, decode(parked.value).payload) != Applied.NOT_YET:
                await orders.unpark(parked.id)
                facts.remove(parked)
                progress = True


async def _retry_parked_requests(orders: Orders, order: Order, requests: list[Parked],
                                 uow: IntakeUnitOfWork, deps: Deps) -> None:
    """Each waiting request runs in a savepoint: neither its refusal nor its own fault (data the
    database refuses) ever undoes the order fact. A refused request gets its rejection; a faulty
    one is dead-lettered on its own; an outage fails the whole transaction, to be retried."""
    for parked in requests:
        waiting = decode(parked.value)
        try:
            async with uow.savepoint():
                if await request_after_sales(waiting, uow, deps) == "parked":
                    continue  # still waiting for a later fact
        except errors.DomainError as err:
            uow.publish(request_rejected(waiting, err), key=order.order_id, cause=waiting)
        except Exception as exc:
            if classify(exc) is not Failure.MESSAGE:
                raise
            uow.publish(_dead_letter_of_parked(parked, exc, deps), key=order.order_id, topic=DLQ.name,
                        cause=waiting)
        await orders.unpark(parked.id)


def _dead_letter_of_parked(parked: Parked, exc: BaseException, deps: Deps) -> DeadLetter:
    code = "DATA_ERROR" if isinstance(exc, DBAPIError) else "HANDLER_ERROR"
    return DeadLetter(
        source_topic=REQUESTS.name, partition=-1, offset=-1, consumer_group=deps.settings.group("intake"),
        error_class=code, reason_code=code, reason=f"parked request failed when replayed: {describe(exc)}",
        original_key=parked.order_id, original_value=parked.value.decode(), original_size=len(parked.value),
        original_sha256=content_hash(parked.value).hex(), original_event_id=parked.event_id,
        original_type=parked.type, attempts=1, failed_at=deps.clock())


def _raw(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode()


# ---------------------------------------------------------------- after-sales requests
async def request_after_sales(envelope: Envelope[c.RequestAfterSales], uow: IntakeUnitOfWork, deps: Deps) -> str:
    """Checks every rule and opens a ticket (returns "opened"), waits for lagging order facts
    ("parked"), ignores a repeat ("duplicate"), or raises a named error (→ RequestRejected)."""
    req = envelope.payload
    orders = uow.orders
    order = await orders.get(req.order_id)  # row lock: requests on one order run one at a time
    new_id = ids.ticket_id(req.request_id)
    tickets = [] if order is None else await uow.tickets.for_order(order.order_id)
    if any(t.ticket_id == new_id for t in tickets):
        # the same request twice opens one ticket. Its id comes from the request's, so the order's
        # tickets (read for the claims anyway) tell; a request id reused on another order takes
        # a ticket id that is taken, and the insert's unique key sends it to the dead letters
        return "duplicate"
    ticket_type = AfterSalesType(req.type.value)
    if order is None or may_become_allowed(order.state, ticket_type):
        # the order's facts may still be on their way: wait for them rather than refuse
        await orders.park(req.order_id, envelope.event_id, envelope.type, _raw(envelope),
                          "ORDER_UNKNOWN" if order is None else "TYPE_NOT_ALLOWED")
        return "parked"
    now = deps.clock()
    policy = deps.settings.policy_for(order.shop_id)
    claims = _claims(tickets)
    reason = await uow.reasons.get(ticket_type, req.reason_code)
    request = AfterSalesRequest(
        buyer_id=req.buyer_id, type=ticket_type, reason_code=req.reason_code,
        lines=_requested(req.lines), evidence=tuple(req.evidence))
    # the window is measured to when the buyer asked, not to when a lagging request got here
    asked_at = min(req.requested_at or envelope.occurred_at, now)
    planned = assess(order, request, claims, reason, policy, asked_at)
    ticket = Ticket(
        ticket_id=new_id, ticket_no=ids.ticket_no(new_id, now), order_id=order.order_id,
        shop_id=order.shop_id, buyer_id=order.buyer_id, type=ticket_type,
        lines=[TicketLine(p.line_no, p.sku, p.quantity, p.positions, p.cap_cents, p.cap_cents,
                          p.line_paid_cents, p.line_quantity, p.exchange_sku) for p in planned],
        applied_at=now, reason_code=req.reason_code, description=req.description,
        evidence=tuple(req.evidence), before_shipment=order.state == OrderState.PAID,
        paid_at=order.paid_at, currency=order.currency)
    ticket.opened(policy, Actor(Role.BUYER, req.buyer_id))
    await uow.tickets.add(ticket, req.request_id)
    uow.publish(c.TicketOpened(request_id=req.request_id, ticket=view(ticket)), key=order.order_id,
                cause=envelope)
    announce(uow, ticket, envelope)
    if ticket_type == AfterSalesType.CANCEL:
        order.close_requested = True
        await orders.save(order)
        uow.publish(o.CloseOrder(order_id=order.order_id, reason="cancelled by the buyer",
                                 ticket_id=ticket.ticket_id), key=order.order_id, cause=envelope)
    return "opened"


def _requested(lines: list[c.RequestedLine]) -> tuple[RequestedUnits, ...]:
    return tuple(RequestedUnits(ln.line_no, ln.quantity, ln.exchange_for.sku if ln.exchange_for else None,
                                ln.exchange_for.unit_price.cents if ln.exchange_for else None) for ln in lines)


def _claims(tickets: list[Ticket], *, money_only: bool = False) -> list[Claim]:
    """The units the order's tickets hold (``money_only``: those of refund tickets)."""
    return [Claim(ln.line_no, ln.positions, kind, ln.refund_cents) for t in tickets for ln in t.lines
            if (not money_only or t.type in MONEY_TYPES)
            and (kind := claim_kind(t.type, t.status, paid_in_full=ln.paid_in_full)) is not None]


async def quote_after_sales(envelope: Envelope[c.QuoteAfterSales], uow: IntakeUnitOfWork, deps: Deps) -> None:
    """What a request would refund, by the rules that would open its ticket; nothing is opened or
    held, so two quotes (or a quote and a request) never compete for units. A request that would
    be refused is refused here with the same reason (→ RequestRejected)."""
    req = envelope.payload
    order = await uow.orders.get(req.order_id)
    if order is None:
        raise errors.OrderUnknown("We cannot find this order yet; please try again in a moment.")
    ticket_type = AfterSalesType(req.type.value)
    tickets = await uow.tickets.for_order(order.order_id)
    reason = await uow.reasons.get(ticket_type, req.reason_code) if req.reason_code else None
    request = AfterSalesRequest(buyer_id=req.buyer_id, type=ticket_type, reason_code=req.reason_code or "",
                                lines=_requested(req.lines))
    now = deps.clock()
    policy = deps.settings.policy_for(order.shop_id)
    planned = assess(order, request, _claims(tickets), reason, policy, now, quoting=True)
    offer = quote(order, ticket_type, planned, _claims(tickets, money_only=True),
                  before_shipment=order.state == OrderState.PAID)

    def money(cents: int) -> Money:
        return Money(cents=cents, currency=offer.currency)
    uow.publish(c.AfterSalesQuoted(
        request_id=req.request_id, order_id=order.order_id, type=req.type,
        lines=[c.QuotedLine(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity, list_price=money(ln.list_cents),
                            refund=money(ln.refund_cents), promotion=money(ln.promotion_cents),
                            coupon=money(ln.coupon_cents), virtual_currency=money(ln.points_cents))
               for ln in offer.lines],
        shipping=money(offer.shipping_cents),
        shipping_if_reviewer_agrees=money(offer.shipping_if_reviewer_agrees_cents), total=money(offer.total_cents),
        not_refunded=money(offer.not_refunded_cents),
        virtual_currency_returned=ticket_type in MONEY_TYPES and policy.return_virtual_currency, quoted_at=now),
        key=order.order_id, cause=envelope)


async def _ticket_of(uow: IntakeUnitOfWork, ticket_id: str, order_id: str) -> Ticket:
    ticket = await uow.tickets.get(ticket_id)
    if ticket is None or ticket.order_id != order_id:
        raise errors.TicketUnknown("We could not find this after-sales request.")
    return ticket


async def withdraw(envelope: Envelope[c.WithdrawTicket], uow: IntakeUnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    ticket = await _ticket_of(uow, cmd.ticket_id, cmd.order_id)
    ticket.withdraw(Actor(Role.BUYER, cmd.buyer_id), deps.clock(),
                    deps.settings.policy_for(ticket.shop_id), cmd.note)
    await save_and_announce(uow, ticket, envelope)


async def submit_return_shipment(envelope: Envelope[c.SubmitReturnShipment], uow: IntakeUnitOfWork,
                                 deps: Deps) -> None:
    cmd = envelope.payload
    ticket = await _ticket_of(uow, cmd.ticket_id, cmd.order_id)
    ticket.submit_return_shipment(Actor(Role.BUYER, cmd.buyer_id), deps.clock(),
                                  deps.settings.policy_for(ticket.shop_id), cmd.carrier, cmd.waybill)
    await save_and_announce(uow, ticket, envelope)


async def refuse_delivery(envelope: Envelope[c.RefuseDelivery], uow: IntakeUnitOfWork, deps: Deps) -> None:
    """拒收: allowed while the order is shipped and not yet received (completed)."""
    cmd = envelope.payload
    order = await uow.orders.get(cmd.order_id)  # the order's row lock first, as a request takes it
    ticket = await _ticket_of(uow, cmd.ticket_id, cmd.order_id)
    ticket.refuse_delivery(Actor(Role.BUYER, cmd.buyer_id), deps.clock(), deps.settings.policy_for(ticket.shop_id),
                           cmd.carrier, cmd.waybill,
                           parcel_delivered=order is None or order.state != OrderState.SHIPPED)
    await save_and_announce(uow, ticket, envelope)


async def confirm_exchange_received(envelope: Envelope[c.ConfirmExchangeReceived], uow: IntakeUnitOfWork,
                                    deps: Deps) -> None:
    cmd = envelope.payload
    ticket = await _ticket_of(uow, cmd.ticket_id, cmd.order_id)
    ticket.confirm_received(Actor(Role.BUYER, cmd.buyer_id), deps.clock(),
                            deps.settings.policy_for(ticket.shop_id))
    await save_and_announce(uow, ticket, envelope)


def request_rejected(envelope: Envelope[Any], err: errors.DomainError) -> c.RequestRejected:
    payload = envelope.payload
    return c.RequestRejected(
        order_id=envelope.key, request_type=envelope.type, code=err.code, message=err.message[:500],
        request_id=getattr(payload, "request_id", None), ticket_id=getattr(payload, "ticket_id", None),
        rejected_event_id=envelope.event_id)


# ---------------------------------------------------------------- the reasons catalogue (admins)
# Applied in the command's transaction, on PostgreSQL (the catalogue's only copy, which acceptance
# reads). The Redis listing cache is not touched here: it expires (reasons.CACHE_TTL_SECONDS), and
# no request is ever judged from it.
def _reason_type(cmd: ad.ReasonCommand) -> AfterSalesType:
    return AfterSalesType(cmd.type.value)


async def save_reason(envelope: Envelope[ad.SaveReason], uow: IntakeUnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    current = await uow.reasons.get(_reason_type(cmd), cmd.code)
    if current is None:
        await uow.reasons.upsert(_reason_type(cmd), cmd.code, cmd.label)
    else:
        await uow.reasons.upsert(_reason_type(cmd), cmd.code, cmd.label, visible=current.visible,
                                 position=current.position)


async def set_reason_visible(envelope: Envelope[ad.SetReasonVisible], uow: IntakeUnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    if not await uow.reasons.set_visible(_reason_type(cmd), cmd.code, cmd.visible):
        raise errors.UnknownReason(f"There is no reason {cmd.code} for {cmd.type.value}.")


async def delete_reason(envelope: Envelope[ad.DeleteReason], uow: IntakeUnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    if not await uow.reasons.delete(_reason_type(cmd), cmd.code):
        raise errors.UnknownReason(f"There is no reason {cmd.code} for {cmd.type.value}.")


async def reorder_reasons(envelope: Envelope[ad.ReorderReasons], uow: IntakeUnitOfWork, deps: Deps) -> None:
    """Every reason of the type, each once: a reorder that misses one would leave it at an old place."""
    cmd = envelope.payload
    known = {r.code for r in await uow.reasons.listing(_reason_type(cmd), include_hidden=True)}
    if sorted(cmd.codes) != sorted(known):
        raise errors.UnknownReason(f"A new order names each of the {len(known)} reasons of {cmd.type.value} once.")
    await uow.reasons.reorder(_reason_type(cmd), list(cmd.codes))
