"""Finance refund use cases: reserve under the ledger lock, ask the payment channel, settle.

Money moves at most once per decision: the refund id is created once per ticket and reused
for every retry, so the channel's idempotency key makes a resend harmless.

Lock order, everywhere in finance: **ticket → refund → ledger**. A use case that starts from a
refund id (a channel answer, a due resend) looks the refund up without a lock, locks its ticket,
then locks the refund and checks it again. Two use cases therefore never wait on each other
in opposite orders (no deadlock between a channel answer and a resend).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from contracts import Envelope, Money
from contracts import aftersales as c
from contracts.ops import (
    CompensationAcknowledged,
    OpsAlert,
    ReturnCompensation,
    SettlementAdjusted,
    SettlementKind,
    Severity,
)
from contracts.orders import CloseOrder, OrderPlaced
from contracts.payments import ExecuteRefund, RefundFailed, RefundSucceeded
from contracts.signing import signature_valid
from services.common.logging import get_logger
from services.common.orders import order_currency, order_lines
from services.common.quarantine import DueItem, Quarantine
from services.common.retry import backoff
from services.common.routes import Deps, PeriodicJob, periodic
from services.common.runtime import Unprocessable
from services.common.tickets import save_and_announce
from services.domain import ids
from services.domain.errors import RefundExceedsPaid
from services.domain.model import TicketStatus
from services.domain.refund import Compensation, Refund, RefundStatus
from services.domain.refunds import RefundLedger, proportional_share, shipping_refund
from services.domain.settlement import Amounts
from services.domain.ticket import Ticket

from .repository import FinanceUnitOfWork, PaidOrder

__all__ = [
    "Deps",
    "on_compensation_acknowledged",
    "on_order_placed",
    "on_refund_failed",
    "on_refund_succeeded",
    "on_ticket_changed",
    "resend_due_refunds",
    "start_refund",
]

log = get_logger("finance")


def _amounts(ticket: Ticket) -> dict[int, tuple[int, int]]:
    """line_no → (cents, units). The units count as refunded only when the refund pays what they
    are still worth; less is a compensation: the units stay with the buyer and the order open."""
    return {ln.line_no: (ln.refund_cents, ln.quantity if ln.paid_in_full else 0) for ln in ticket.lines}


def _backoff(deps: Deps) -> Callable[[int], timedelta]:
    return lambda attempts: backoff(deps.settings.refund_retry_base_seconds, attempts)


def starts_money(event: c.TicketStatusChanged) -> bool:
    """Money starts on the transition into REFUNDING only: a self-transition never starts it
    (the route's ``only``: finance skips every other transition without a transaction)."""
    return event.enters(c.TicketStatus.REFUNDING)


async def on_ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: FinanceUnitOfWork, deps: Deps) -> None:
    if starts_money(envelope.payload):
        await start_refund(envelope.payload.ticket.ticket_id, uow, deps, envelope, order_id=envelope.key)


async def start_refund(ticket_id: str, uow: FinanceUnitOfWork, deps: Deps, cause: Envelope[Any] | None,
                       order_id: str | None = None) -> None:
    """Reserves the amounts under the ledger lock and sends ExecuteRefund."""
    ticket = await uow.tickets.get(ticket_id)
    if ticket is None or (order_id is not None and ticket.order_id != order_id):
        raise Unprocessable(f"refund requested for unknown ticket {ticket_id}", code="UNKNOWN_TICKET")
    if ticket.status != TicketStatus.REFUNDING:
        return  # a stale event: the ticket moved on
    refund = await uow.refunds.for_ticket(ticket_id, ticket.order_id)
    if refund is not None and refund.in_flight_or_done:
        return  # already in flight or done
    if not await uow.orders.known(ticket.order_id):
        # finance reads the orders topic on its own and is behind on it: waiting here would hold
        # the tickets partition (and, in the same consumer, the orders topic it waits for)
        log.info("refund_waits_for_order_payment", ticket_id=ticket_id, order_id=ticket.order_id)
        return  # on_order_placed starts it once finance has what the order paid
    now = deps.clock()
    policy = deps.settings.policy_for(ticket.shop_id)
    ledger = await uow.ledgers.get(ticket.order_id)
    amounts = _amounts(ticket)
    shipping = shipping_refund(
        shipping_fee_cents=ledger.shipping_fee_cents,
        already_refunded_cents=ledger.shipping_refunded_cents, before_shipment=ticket.before_shipment,
        order_fully_refunded_after_this=ledger.all_units_reserved_with(amounts),
        reviewer_flag=ticket.refund_shipping)
    order = await uow.orders.get(ticket.order_id)
    coupon, points = _compensation_cents(order, ticket)
    order_total = (ledger.leaving_cents + sum(cents for cents, _ in amounts.values()) + shipping + coupon + points
                   + await _given_back_by_other_tickets(uow, order, ticket))
    if ticket.check_order_total(now, policy, order_total):
        await save_and_announce(uow, ticket, cause)  # a manager or a person in finance first
        return
    try:
        ledger.reserve(amounts, shipping)
    except RefundExceedsPaid as refused:
        ticket.refund_failed(now, policy, refused.message)
        await save_and_announce(uow, ticket, cause)
        return
    if refund is None:
        refund = Refund.new(ticket_id, ticket.order_id, amounts, shipping)
        await uow.refunds.add(refund)
    else:  # finance retried a failed refund: same refund id, so the channel can't pay twice
        refund.restart(amounts, shipping)
    if refund.amount_cents == 0:  # nothing to pay (units paid 0, or adjusted to 0): done at once
        refund.complete_without_payment(now)
        await uow.refunds.save(refund)
        await _completed(uow, ticket, refund, ledger, deps, cause)
    else:
        _send(uow, refund, ticket.currency, deps, now, cause)
        await uow.refunds.save(refund)
    await uow.ledgers.save(ledger)


def _send(uow: FinanceUnitOfWork, refund: Refund, currency: str, deps: Deps, now: datetime,
          cause: Envelope[Any] | None) -> None:
    refund.sent(now, _backoff(deps))
    uow.publish(ExecuteRefund(refund_id=refund.refund_id, ticket_id=refund.ticket_id, order_id=refund.order_id,
                              amount=Money(cents=refund.amount_cents, currency=currency),
                              attempt=refund.attempts), key=refund.order_id, cause=cause)


async def on_order_placed(envelope: Envelope[OrderPlaced], uow: FinanceUnitOfWork, deps: Deps) -> None:
    """Finance keeps its own copy of what the order paid: its ledger never reads intake's tables.
    A ticket that entered REFUNDING before finance had the copy starts its refund now."""
    placed = envelope.payload
    await uow.orders.record(PaidOrder(  # a mixed-currency order is dead-lettered (intake refuses it too)
        placed.order_id, placed.shop_id, tuple(order_lines(placed)), placed.shipping_fee.cents,
        placed.platform_subsidy.cents, placed.platform_fee.cents, order_currency(placed)))
    for ticket in await uow.tickets.for_order(placed.order_id):
        if ticket.status == TicketStatus.REFUNDING:
            await start_refund(ticket.ticket_id, uow, deps, envelope)


def _verified(envelope: Envelope[RefundSucceeded] | Envelope[RefundFailed], deps: Deps) -> None:
    """Only the channel's signature makes a result true: anyone able to write the topic could
    otherwise complete a refund by naming its id."""
    if not signature_valid(envelope.payload, deps.settings.payment_keys):
        raise Unprocessable(f"{envelope.type} for refund {envelope.payload.refund_id} is unsigned or its "
                            "signature does not verify", code="SIGNATURE_INVALID", alert=Severity.CRITICAL)


async def on_refund_succeeded(envelope: Envelope[RefundSucceeded], uow: FinanceUnitOfWork, deps: Deps) -> None:
    _verified(envelope, deps)
    result = envelope.payload
    ticket, refund = await _locked(uow, result.refund_id, result.order_id)
    if refund.status == RefundStatus.SUCCEEDED:
        return
    now = deps.clock()
    ledger = await uow.ledgers.get(refund.order_id)
    if refund.succeed(result.channel_ref, now):  # a late success after we gave up: the money did move
        ledger.reserve(refund.amounts, refund.shipping_cents)
    await uow.refunds.save(refund)
    await _completed(uow, ticket, refund, ledger, deps, envelope)
    await uow.ledgers.save(ledger)


async def _completed(uow: FinanceUnitOfWork, ticket: Ticket, refund: Refund, ledger: RefundLedger, deps: Deps,
                     cause: Envelope[Any] | None) -> None:
    """What follows every completed refund, paid by the channel or with nothing to pay: the
    ledger, the ticket, the merchant's settlement, the order's close and the coupon/points."""
    ledger.confirm(refund.amounts)
    ticket.refund_succeeded(deps.clock(), deps.settings.policy_for(ticket.shop_id), refund.amount_cents)
    await save_and_announce(uow, ticket, cause)
    def money(cents: int) -> Money:
        return Money(cents=cents, currency=ticket.currency)

    if refund.amount_cents:
        order = await uow.orders.get(ticket.order_id)
        adjustment, before, after = ledger.settle(
            Amounts(order.paid_cents, order.platform_subsidy_cents, order.platform_fee_cents), refund.amount_cents)
        uow.publish(SettlementAdjusted(
            ticket_id=ticket.ticket_id, order_id=ticket.order_id, shop_id=ticket.shop_id,
            refund=money(refund.amount_cents), settlement_before=money(max(before, 0)),
            settlement_after=money(max(after, 0)), subsidy_taken_back=money(-adjustment.subsidy_cents),
            fee_given_back=money(-adjustment.fee_cents),
            kind=SettlementKind.REFUND if refund.moves_units else SettlementKind.COMPENSATION),
            key=ticket.order_id, cause=cause)
    if ledger.request_close():
        uow.publish(CloseOrder(order_id=ticket.order_id, reason="all units refunded",
                               ticket_id=ticket.ticket_id), key=ticket.order_id, cause=cause)
    if ticket.refund_coupon or ticket.refund_virtual_currency:
        await _compensate(uow, ticket, cause)


def _compensation_cents(order: PaidOrder, ticket: Ticket) -> tuple[int, int]:
    """The coupon and virtual currency the ticket gives back, split like the paid amount."""
    coupon = points = 0
    for ln in ticket.lines:
        order_line = order.line(ln.line_no)
        if ticket.refund_coupon:
            coupon += proportional_share(order_line.coupon_cents, ln.line_quantity, ln.positions)
        if ticket.refund_virtual_currency:
            points += proportional_share(order_line.points_cents, ln.line_quantity, ln.positions)
    return coupon, points


async def _given_back_by_other_tickets(uow: FinanceUnitOfWork, order: PaidOrder, ticket: Ticket) -> int:
    """Coupon and virtual currency the order's other refunds give back (in flight or done): they
    leave the shop too, so they count towards its thresholds (the ledger holds the cash only)."""
    return sum(sum(_compensation_cents(order, other)) for other in await uow.tickets.for_order(ticket.order_id)
               if other.ticket_id != ticket.ticket_id and other.has_money
               and other.status in (TicketStatus.REFUNDING, TicketStatus.COMPLETED))


async def _compensate(uow: FinanceUnitOfWork, ticket: Ticket, cause: Envelope[Any] | None) -> None:
    """Coupons and virtual currency are not cash: they go back through the marketing system."""
    coupon, points = _compensation_cents(await uow.orders.get(ticket.order_id), ticket)
    if coupon == 0 and points == 0:
        return
    compensation = Compensation(ids.compensation_id(ticket.ticket_id), ticket.ticket_id, ticket.order_id,
                                coupon, points)
    if await uow.compensations.add(compensation):
        uow.publish(ReturnCompensation(
            compensation_id=compensation.compensation_id, ticket_id=ticket.ticket_id, order_id=ticket.order_id,
            buyer_id=ticket.buyer_id, coupon=Money(cents=coupon, currency=ticket.currency),
            virtual_currency=Money(cents=points, currency=ticket.currency)),
            key=ticket.order_id, cause=cause)


async def on_refund_failed(envelope: Envelope[RefundFailed], uow: FinanceUnitOfWork, deps: Deps) -> None:
    _verified(envelope, deps)
    result = envelope.payload
    ticket, refund = await _locked(uow, result.refund_id, result.order_id)
    if refund.status != RefundStatus.PENDING:
        return
    now = deps.clock()
    if refund.refused(f"{result.code}: {result.message}", retryable=result.retryable,
                      max_attempts=deps.settings.refund_max_attempts, now=now, backoff=_backoff(deps)):
        await _give_up(uow, ticket, refund, now, deps, envelope)
    await uow.refunds.save(refund)


async def _locked(uow: FinanceUnitOfWork, refund_id: uuid.UUID, order_id: str) -> tuple[Ticket, Refund]:
    """The refund's ticket and the refund, locked in the module's lock order (ticket first)."""
    ticket_id = await uow.refunds.ticket_of(refund_id)
    ticket = await uow.tickets.get(ticket_id) if ticket_id else None
    refund = await uow.refunds.get(refund_id) if ticket is not None else None
    if ticket is None or refund is None or refund.order_id != order_id:
        raise Unprocessable(f"payment answer for unknown refund {refund_id}", code="UNKNOWN_REFUND")
    return ticket, refund


async def _give_up(uow: FinanceUnitOfWork, ticket: Ticket, refund: Refund, now: datetime, deps: Deps,
                   cause: Envelope[Any] | None, fallback: str = "no answer from the payment channel") -> None:
    refund.give_up(fallback)
    ledger = await uow.ledgers.get(refund.order_id)
    ledger.release(refund.amounts, refund.shipping_cents)
    await uow.ledgers.save(ledger)
    ticket.refund_failed(now, deps.settings.policy_for(ticket.shop_id), refund.last_error)
    await save_and_announce(uow, ticket, cause)


def resend_due_refunds(deps: Deps) -> PeriodicJob[FinanceUnitOfWork]:
    """Refunds with no answer in time are resent with the same id; after the last try they fail."""
    async def due(uow: FinanceUnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await uow.refunds.due(deps.clock(), skip)

    async def run(uow: FinanceUnitOfWork, item: DueItem) -> bool:
        ticket, refund = await _locked(uow, uuid.UUID(item.id), item.order_id)
        now = deps.clock()
        if not refund.is_due(now):
            return False  # answered meanwhile, or another finance process resent it
        if await uow.unpublished("ExecuteRefund", refund.order_id):
            refund.postpone(now, _backoff(deps))
            await uow.refunds.save(refund)
            return False  # the last request has not even reached Kafka: not an attempt the channel saw
        if refund.exhausted(deps.settings.refund_max_attempts):
            await _give_up(uow, ticket, refund, now, deps, None, "payment channel did not answer")
            uow.publish(OpsAlert(kind="REFUND_UNANSWERED", severity=Severity.CRITICAL,
                                 message=f"Refund {refund.refund_id} got no answer after "
                                         f"{refund.attempts} attempts", order_id=refund.order_id,
                                 ticket_id=refund.ticket_id), key=refund.order_id)
        else:
            _send(uow, refund, ticket.currency, deps, now, None)
        await uow.refunds.save(refund)
        return True

    return periodic("resend_due_refunds", due, run, deps.settings.scheduler_tick_seconds)


async def on_compensation_acknowledged(envelope: Envelope[CompensationAcknowledged], uow: FinanceUnitOfWork,
                                       deps: Deps) -> None:
    ack = envelope.payload
    compensation = await uow.compensations.get(ack.compensation_id)
    if compensation is None:
        raise Unprocessable(f"acknowledgement for unknown compensation {ack.compensation_id}")
    compensation.acknowledge(deps.clock())
    await uow.compensations.save(compensation)
