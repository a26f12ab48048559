"""Review use cases: automatic rules on new tickets, and ops / manager / finance decisions.

Each decision locks the ticket, lets the aggregate check state, role and maker-checker, and
saves the result with its audit entry and event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from contracts import Envelope
from contracts import aftersales as c
from contracts import decisions as d
from contracts.warehouse import InterceptOutcome, InterceptResult, InterceptShipment, ReleaseIntercept, SkuQuantity
from services.common.routes import Deps
from services.common.tickets import actor_from, save_and_announce
from services.domain import errors
from services.domain.model import SYSTEM, Actor, AfterSalesType, InterceptState, TicketStatus
from services.domain.policy import Policy
from services.domain.shipment import sku_totals
from services.domain.ticket import Ticket

from .repository import ReviewUnitOfWork, ticket_of

__all__ = [
    "Deps",
    "adjust_refund_amount",
    "approve",
    "approve_large_refund",
    "approve_refund",
    "on_intercept_result",
    "on_ticket_changed",
    "on_ticket_opened",
    "reissue_missing_units",
    "reject",
    "resolve_intervention",
    "retry_refund",
    "send_back_refund",
    "set_refund_flags",
]


def refund_only_before_shipment(view: c.TicketView) -> bool:
    return view.type == c.AfterSalesType.REFUND_ONLY and view.before_shipment


def intercepts(opened: c.TicketOpened) -> bool:
    """The route's ``only``, as is ``releases``: review skips every other ticket event without a
    transaction."""
    return refund_only_before_shipment(opened.ticket)


def releases(event: c.TicketStatusChanged) -> bool:
    return event.enters(c.TicketStatus.CLOSED) and refund_only_before_shipment(event.ticket)


async def on_ticket_opened(envelope: Envelope[c.TicketOpened], uow: ReviewUnitOfWork, deps: Deps) -> None:
    """Refund only before shipment: ask the warehouse to intercept; within 30 minutes of
    payment, approve at once (the system is the reviewer). The money itself waits for the
    intercept (``Ticket.goods_not_stopped_yet``)."""
    opened = envelope.payload
    if not intercepts(opened):
        return
    ticket = await ticket_of(uow, opened.ticket.ticket_id, envelope.key)
    if ticket.is_final or ticket.intercept != InterceptState.NONE:
        return  # withdrawn already, or a redelivery
    policy = deps.settings.policy_for(ticket.shop_id)
    now = deps.clock()
    ticket.request_intercept(now, policy)  # even if ops was quicker: no money before the goods stop
    uow.publish(InterceptShipment(ticket_id=ticket.ticket_id, order_id=ticket.order_id, lines=_units(ticket)),
                key=ticket.order_id, cause=envelope)
    if ticket.status == TicketStatus.PENDING_REVIEW and ticket.qualifies_for_instant_refund(policy):
        ticket.approve(SYSTEM, now, policy, "refund requested within 30 minutes of payment")
    await save_and_announce(uow, ticket, envelope)


def _units(ticket: Ticket) -> list[SkuQuantity]:
    """The ticket's units, per sku: an intercept holds back these, not the whole order."""
    return [SkuQuantity(sku=ln.sku, quantity=ln.quantity) for ln in sku_totals([(ln.sku, ln.quantity)
                                                                               for ln in ticket.lines])]


def _release(uow: ReviewUnitOfWork, ticket: Ticket, cause: Envelope[Any]) -> None:
    uow.publish(ReleaseIntercept(ticket_id=ticket.ticket_id, order_id=ticket.order_id, lines=_units(ticket),
                                 reason=ticket.close_reason[:500]), key=ticket.order_id, cause=cause)


async def on_intercept_result(envelope: Envelope[InterceptResult], uow: ReviewUnitOfWork, deps: Deps) -> None:
    result = envelope.payload
    ticket = await ticket_of(uow, result.ticket_id, envelope.key)
    if ticket.record_intercept(deps.clock(), deps.settings.policy_for(ticket.shop_id),
                               result.outcome == InterceptOutcome.INTERCEPTED):
        _release(uow, ticket, envelope)  # the answer came after the ticket ended
    await save_and_announce(uow, ticket, envelope)


async def on_ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: ReviewUnitOfWork, deps: Deps) -> None:
    """A refund-only that ended without a refund (withdrawn, rejected, closed) releases its
    intercept, so the buyer's parcel is not held for ever."""
    event = envelope.payload
    if not releases(event):
        return
    ticket = await ticket_of(uow, event.ticket.ticket_id, envelope.key)
    if ticket.release_intercept(deps.clock()):
        _release(uow, ticket, envelope)
        await save_and_announce(uow, ticket, envelope)


# ---------------------------------------------------------------- back-office decisions
Decision = Callable[[Ticket, Actor, datetime, Policy], None]
D = TypeVar("D", bound=d.Decision)


async def _decide(envelope: Envelope[D], uow: ReviewUnitOfWork, deps: Deps, decision: Decision) -> None:
    """Every decision: lock the ticket, let the aggregate check state, role and maker-checker,
    save it with its audit entry and event."""
    cmd = envelope.payload
    ticket = await ticket_of(uow, cmd.ticket_id, envelope.key)
    if ticket.type == AfterSalesType.CANCEL:
        raise errors.IllegalTransition("A cancelled order's ticket needs no decision.")
    decision(ticket, actor_from(cmd.actor), deps.clock(), deps.settings.policy_for(ticket.shop_id))
    await save_and_announce(uow, ticket, envelope)


def _amounts(lines: list[d.LineAmount]) -> dict[int, int]:
    return {ln.line_no: ln.refund_cents for ln in lines}


async def approve(envelope: Envelope[d.ApproveTicket], uow: ReviewUnitOfWork, deps: Deps) -> None:
    """Ops approve; a return goes to the address they gave, or to the shop's return desk."""
    cmd = envelope.payload
    given = cmd.return_address.model_dump() if cmd.return_address else None
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.approve(
        actor, now, policy, cmd.note, given or deps.settings.return_address_for(t.shop_id)))


async def reject(envelope: Envelope[d.RejectTicket], uow: ReviewUnitOfWork, deps: Deps) -> None:
    reason = envelope.payload.reason
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.reject(actor, now, policy, reason))


async def reissue_missing_units(envelope: Envelope[d.ReissueMissingUnits], uow: ReviewUnitOfWork,
                                deps: Deps) -> None:
    note = envelope.payload.note
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.reissue_missing(actor, now, policy, note))


async def adjust_refund_amount(envelope: Envelope[d.AdjustRefundAmount], uow: ReviewUnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.adjust_refund(
        actor, now, policy, _amounts(cmd.lines), cmd.reason))


async def set_refund_flags(envelope: Envelope[d.SetRefundFlags], uow: ReviewUnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.set_flags(
        actor, now, coupon=cmd.refund_coupon, virtual_currency=cmd.refund_virtual_currency,
        shipping=cmd.refund_shipping))


async def resolve_intervention(envelope: Envelope[d.ResolveIntervention], uow: ReviewUnitOfWork,
                               deps: Deps) -> None:
    cmd = envelope.payload
    instead = _INSTEAD.get(cmd.outcome)
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.resolve_intervention(
        actor, now, policy, send_back=cmd.outcome == d.InterventionOutcome.SEND_BACK,
        amounts=_amounts(cmd.lines), note=cmd.note, instead=instead))


_INSTEAD = {d.InterventionOutcome.REFUND_INSTEAD: AfterSalesType.RETURN_AND_REFUND,
            d.InterventionOutcome.EXCHANGE_INSTEAD: AfterSalesType.EXCHANGE}


async def approve_large_refund(envelope: Envelope[d.ApproveLargeRefund], uow: ReviewUnitOfWork, deps: Deps) -> None:
    note = envelope.payload.note
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.approve_large_amount(
        actor, now, policy, note))


async def approve_refund(envelope: Envelope[d.ApproveRefund], uow: ReviewUnitOfWork, deps: Deps) -> None:
    note = envelope.payload.note
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.approve_refund(actor, now, policy, note))


async def send_back_refund(envelope: Envelope[d.SendBackRefund], uow: ReviewUnitOfWork, deps: Deps) -> None:
    reason = envelope.payload.reason
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.send_back(actor, now, policy, reason))


async def retry_refund(envelope: Envelope[d.RetryRefund], uow: ReviewUnitOfWork, deps: Deps) -> None:
    await _decide(envelope, uow, deps, lambda t, actor, now, policy: t.retry_refund(actor, now, policy))
