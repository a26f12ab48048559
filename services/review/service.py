"""Review use cases: automatic rules on new tickets, and ops / manager / finance decisions.

Each decision locks the ticket, lets the aggregate check state, role and maker-checker, and
saves the result with its audit entry and event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import Envelope
from contracts import aftersales as c
from contracts import decisions as d
from contracts.warehouse import InterceptOutcome, InterceptResult, InterceptShipment
from services.common.settings import Settings
from services.common.tickets import actor_from, save_and_announce
from services.common.uow import UnitOfWork
from services.domain import errors
from services.domain.model import SYSTEM, AfterSalesType, TicketStatus
from services.domain.policy import Policy
from services.domain.ticket import Ticket

from .repository import ReviewRepository


@dataclass(frozen=True)
class Deps:
    settings: Settings
    clock: Callable[[], datetime]


async def on_ticket_opened(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    """Refund only before shipment: ask the warehouse to intercept; within 30 minutes of
    payment, approve at once (the system is the reviewer)."""
    opened: c.TicketOpened = envelope.payload
    if opened.ticket.type != c.AfterSalesType.REFUND_ONLY or not opened.ticket.before_shipment:
        return
    ticket = await ReviewRepository(uow.session).ticket(opened.ticket.ticket_id, envelope.key)
    if ticket.status != TicketStatus.PENDING_REVIEW:
        return
    policy = deps.settings.policy_for(ticket.shop_id)
    now = deps.clock()
    ticket.request_intercept(now, policy)
    uow.publish(InterceptShipment(ticket_id=ticket.ticket_id, order_id=ticket.order_id),
                key=ticket.order_id, cause=envelope)
    if ticket.qualifies_for_instant_refund(policy):
        ticket.approve(SYSTEM, now, policy, "refund requested within 30 minutes of payment")
    await save_and_announce(uow, ticket, envelope)


async def on_intercept_result(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    result: InterceptResult = envelope.payload
    ticket = await ReviewRepository(uow.session).ticket(result.ticket_id, envelope.key)
    ticket.record_intercept(deps.clock(), deps.settings.policy_for(ticket.shop_id),
                            result.outcome == InterceptOutcome.INTERCEPTED)
    await save_and_announce(uow, ticket, envelope)


def _amounts(lines: list[d.LineAmount]) -> dict[int, int]:
    return {ln.line_no: ln.refund_cents for ln in lines}


def _decide(ticket: Ticket, cmd: Any, now: datetime, policy: Policy) -> None:
    actor = actor_from(cmd.actor)
    if isinstance(cmd, d.ApproveTicket):
        ticket.approve(actor, now, policy, cmd.note)
    elif isinstance(cmd, d.RejectTicket):
        ticket.reject(actor, now, policy, cmd.reason)
    elif isinstance(cmd, d.AdjustRefundAmount):
        ticket.adjust_refund(actor, now, policy, _amounts(cmd.lines), cmd.reason)
    elif isinstance(cmd, d.SetRefundFlags):
        ticket.set_flags(actor, now, coupon=cmd.refund_coupon,
                         virtual_currency=cmd.refund_virtual_currency, shipping=cmd.refund_shipping)
    elif isinstance(cmd, d.ResolveIntervention):
        ticket.resolve_intervention(actor, now, policy,
                                    send_back=cmd.outcome == d.InterventionOutcome.SEND_BACK,
                                    amounts=_amounts(cmd.lines), note=cmd.note)
    elif isinstance(cmd, d.ApproveLargeRefund):
        ticket.approve_large_amount(actor, now, policy, cmd.note)
    elif isinstance(cmd, d.ApproveRefund):
        ticket.approve_refund(actor, now, policy, cmd.note)
    elif isinstance(cmd, d.SendBackRefund):
        ticket.send_back(actor, now, policy, cmd.reason)
    elif isinstance(cmd, d.RetryRefund):
        ticket.retry_refund(actor, now, policy)
    else:  # pragma: no cover - the subscription lists exactly the types above
        raise TypeError(type(cmd).__name__)


async def decide(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    ticket = await ReviewRepository(uow.session).ticket(cmd.ticket_id, envelope.key)
    if ticket.type == AfterSalesType.CANCEL:
        raise errors.IllegalTransition("A cancelled order's ticket needs no decision.")
    _decide(ticket, cmd, deps.clock(), deps.settings.policy_for(ticket.shop_id))
    await save_and_announce(uow, ticket, envelope)
