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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts import Envelope, Money
from contracts import aftersales as c
from contracts.ops import CompensationAcknowledged, OpsAlert, ReturnCompensation, SettlementAdjusted, Severity
from contracts.orders import CloseOrder
from contracts.payments import ExecuteRefund, RefundFailed, RefundSucceeded
from services.common.quarantine import DueItem, Quarantine
from services.common.retry import backoff
from services.common.runtime import PeriodicJob, Unprocessable, periodic
from services.common.settings import Settings
from services.common.tables import CompensationRow, RefundRow
from services.common.tickets import TicketStore, save_and_announce
from services.common.uow import UnitOfWork
from services.domain.errors import RefundExceedsPaid
from services.domain.model import TicketStatus
from services.domain.refunds import proportional_share, shipping_refund
from services.domain.ticket import Ticket

from .repository import FinanceRepository


@dataclass(frozen=True)
class Deps:
    settings: Settings
    clock: Callable[[], datetime]


def _amounts(ticket: Ticket) -> dict[int, tuple[int, int]]:
    return {ln.line_no: (ln.refund_cents, ln.quantity) for ln in ticket.lines}


def _stored_amounts(refund: RefundRow) -> dict[int, tuple[int, int]]:
    return {ln["line_no"]: (ln["cents"], ln["units"]) for ln in refund.lines}


def _backoff(deps: Deps, attempts: int) -> timedelta:
    return backoff(deps.settings.refund_retry_base_seconds, attempts)


async def on_ticket_changed(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    """Money starts on the transition into REFUNDING only: a self-transition never starts it."""
    event: c.TicketStatusChanged = envelope.payload
    if event.to_status == c.TicketStatus.REFUNDING and event.from_status != c.TicketStatus.REFUNDING:
        await start_refund(event.ticket.ticket_id, uow, deps, envelope, order_id=envelope.key)


async def start_refund(ticket_id: str, uow: UnitOfWork, deps: Deps, cause: Envelope[Any] | None,
                       order_id: str | None = None) -> None:
    """Reserves the amounts under the ledger lock and sends ExecuteRefund."""
    ticket = await TicketStore(uow.session).get(ticket_id)
    if ticket is None or (order_id is not None and ticket.order_id != order_id):
        raise Unprocessable(f"refund requested for unknown ticket {ticket_id}", code="UNKNOWN_TICKET")
    if ticket.status != TicketStatus.REFUNDING:
        return  # a stale event: the ticket moved on
    repo = FinanceRepository(uow.session)
    refund = await repo.refund_for_ticket(ticket_id)
    if refund is not None and refund.status in ("PENDING", "SUCCEEDED"):
        return  # already in flight or done
    now = deps.clock()
    policy = deps.settings.policy_for(ticket.shop_id)
    ledger, ledger_row = await repo.ledger(ticket.order_id)
    amounts = _amounts(ticket)
    shipping = shipping_refund(
        shipping_fee_cents=ledger.shipping_fee_cents,
        already_refunded_cents=ledger.shipping_refunded_cents, before_shipment=ticket.before_shipment,
        order_fully_refunded_after_this=ledger.all_units_reserved_with(amounts),
        reviewer_flag=ticket.refund_shipping)
    try:
        ledger.reserve(amounts, shipping)
    except RefundExceedsPaid as refused:
        ticket.refund_failed(now, policy, refused.message)
        await save_and_announce(uow, ticket, cause)
        return
    repo.write_ledger(ledger_row, ledger)
    goods = ticket.refund_total_cents
    lines = [{"line_no": n, "cents": cents, "units": units} for n, (cents, units) in amounts.items()]
    if refund is None:
        refund = RefundRow(refund_id=uuid.uuid4(), ticket_id=ticket_id, order_id=ticket.order_id,
                           goods_cents=goods, shipping_cents=shipping, amount_cents=goods + shipping,
                           lines=lines, status="PENDING", attempts=0, last_error="")
        await repo.add_refund(refund)
    else:  # finance retried a failed refund: same refund id, so the channel can't pay twice
        refund.status, refund.goods_cents, refund.shipping_cents = "PENDING", goods, shipping
        refund.amount_cents, refund.lines, refund.attempts = goods + shipping, lines, 0
    if refund.amount_cents == 0:
        refund.status, refund.completed_at = "SUCCEEDED", now
        ledger.confirm(amounts)
        repo.write_ledger(ledger_row, ledger)
        ticket.refund_succeeded(now, policy, 0)
        await save_and_announce(uow, ticket, cause)
        return
    _send(uow, refund, deps, now, cause)


def _send(uow: UnitOfWork, refund: RefundRow, deps: Deps, now: datetime, cause: Envelope[Any] | None) -> None:
    refund.attempts += 1
    refund.next_attempt_at = now + _backoff(deps, refund.attempts)
    uow.publish(ExecuteRefund(refund_id=refund.refund_id, ticket_id=refund.ticket_id,
                              order_id=refund.order_id, amount=Money.cny(refund.amount_cents),
                              attempt=refund.attempts), key=refund.order_id, cause=cause)


async def on_refund_succeeded(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    result: RefundSucceeded = envelope.payload
    repo = FinanceRepository(uow.session)
    ticket, refund = await _locked(repo, uow, result.refund_id, result.order_id)
    if refund.status == "SUCCEEDED":
        return
    now = deps.clock()
    ledger, ledger_row = await repo.ledger(refund.order_id)
    amounts = _stored_amounts(refund)
    if refund.status == "FAILED":  # a late success after we gave up: the money did move
        ledger.reserve(amounts, refund.shipping_cents)
    ledger.confirm(amounts)
    repo.write_ledger(ledger_row, ledger)
    refund.status, refund.channel_ref, refund.completed_at = "SUCCEEDED", result.channel_ref, now
    refund.next_attempt_at = None
    ticket.refund_succeeded(now, deps.settings.policy_for(ticket.shop_id), refund.amount_cents)
    await save_and_announce(uow, ticket, envelope)

    before = ledger_row.settlement_cents
    ledger_row.settlement_cents = before - refund.amount_cents
    uow.publish(SettlementAdjusted(
        ticket_id=ticket.ticket_id, order_id=ticket.order_id, shop_id=ticket.shop_id,
        refund=Money.cny(refund.amount_cents), settlement_before=Money.cny(max(before, 0)),
        settlement_after=Money.cny(max(ledger_row.settlement_cents, 0))), key=ticket.order_id, cause=envelope)
    if ledger.fully_refunded and not ledger_row.close_requested:
        ledger_row.close_requested = True
        uow.publish(CloseOrder(order_id=ticket.order_id, reason="all units refunded",
                               ticket_id=ticket.ticket_id), key=ticket.order_id, cause=envelope)
    if ticket.refund_coupon or ticket.refund_virtual_currency:
        await _compensate(uow, repo, ticket, envelope)


async def _compensate(uow: UnitOfWork, repo: FinanceRepository, ticket: Ticket, cause: Envelope[Any]) -> None:
    """Coupons and virtual currency are not cash: they go back through the marketing system."""
    lines = {ln["line_no"]: ln for ln in await repo.order_lines(ticket.order_id)}
    coupon = points = 0
    for ln in ticket.lines:
        order_line = lines[ln.line_no]
        if ticket.refund_coupon:
            coupon += proportional_share(order_line["coupon_cents"], ln.line_quantity, ln.positions)
        if ticket.refund_virtual_currency:
            points += proportional_share(order_line["points_cents"], ln.line_quantity, ln.positions)
    if coupon == 0 and points == 0:
        return
    row = CompensationRow(compensation_id=uuid.uuid4(), ticket_id=ticket.ticket_id,
                          order_id=ticket.order_id, coupon_cents=coupon, virtual_currency_cents=points)
    if await repo.add_compensation(row):
        uow.publish(ReturnCompensation(
            compensation_id=row.compensation_id, ticket_id=ticket.ticket_id, order_id=ticket.order_id,
            buyer_id=ticket.buyer_id, coupon=Money.cny(coupon), virtual_currency=Money.cny(points)),
            key=ticket.order_id, cause=cause)


async def on_refund_failed(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    result: RefundFailed = envelope.payload
    repo = FinanceRepository(uow.session)
    ticket, refund = await _locked(repo, uow, result.refund_id, result.order_id)
    if refund.status != "PENDING":
        return
    refund.last_error = f"{result.code}: {result.message}"[:500]
    now = deps.clock()
    if result.retryable and refund.attempts < deps.settings.refund_max_attempts:
        refund.next_attempt_at = now + _backoff(deps, refund.attempts)
        return
    await _give_up(uow, repo, ticket, refund, now, deps, envelope)


async def _locked(repo: FinanceRepository, uow: UnitOfWork, refund_id: uuid.UUID,
                  order_id: str) -> tuple[Ticket, RefundRow]:
    """The refund's ticket and the refund, locked in the module's lock order (ticket first)."""
    ticket_id = await repo.ticket_of_refund(refund_id)
    ticket = await TicketStore(uow.session).get(ticket_id) if ticket_id else None
    refund = await repo.refund(refund_id) if ticket is not None else None
    if ticket is None or refund is None or refund.order_id != order_id:
        raise Unprocessable(f"payment answer for unknown refund {refund_id}", code="UNKNOWN_REFUND")
    return ticket, refund


async def _give_up(uow: UnitOfWork, repo: FinanceRepository, ticket: Ticket, refund: RefundRow, now: datetime,
                   deps: Deps, cause: Envelope[Any] | None) -> None:
    refund.status, refund.next_attempt_at = "FAILED", None
    ledger, ledger_row = await repo.ledger(refund.order_id)
    ledger.release(_stored_amounts(refund), refund.shipping_cents)
    repo.write_ledger(ledger_row, ledger)
    ticket.refund_failed(now, deps.settings.policy_for(ticket.shop_id),
                         refund.last_error or "no answer from the payment channel")
    await save_and_announce(uow, ticket, cause)


def resend_due_refunds(deps: Deps) -> PeriodicJob:
    """Refunds with no answer in time are resent with the same id; after the last try they fail."""
    async def due(uow: UnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await FinanceRepository(uow.session).due_refunds(deps.clock(), skip)

    async def run(uow: UnitOfWork, item: DueItem) -> bool:
        repo = FinanceRepository(uow.session)
        ticket, refund = await _locked(repo, uow, uuid.UUID(item.id), item.order_id)
        now = deps.clock()
        if refund.status != "PENDING" or refund.next_attempt_at is None or refund.next_attempt_at > now:
            return False  # answered meanwhile, or another finance process resent it
        if await uow.unpublished("ExecuteRefund", refund.order_id):
            refund.next_attempt_at = now + _backoff(deps, refund.attempts)
            return False  # the last request has not even reached Kafka: not an attempt the channel saw
        if refund.attempts >= deps.settings.refund_max_attempts:
            refund.last_error = refund.last_error or "payment channel did not answer"
            await _give_up(uow, repo, ticket, refund, now, deps, None)
            uow.publish(OpsAlert(kind="REFUND_UNANSWERED", severity=Severity.CRITICAL,
                                 message=f"Refund {refund.refund_id} got no answer after "
                                         f"{refund.attempts} attempts", order_id=refund.order_id,
                                 ticket_id=refund.ticket_id), key=refund.order_id)
        else:
            _send(uow, refund, deps, now, None)
        return True

    return periodic("resend_due_refunds", due, run, deps.settings.scheduler_tick_seconds)


async def on_compensation_acknowledged(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    ack: CompensationAcknowledged = envelope.payload
    row = await FinanceRepository(uow.session).compensation(ack.compensation_id)
    if row is None:
        raise Unprocessable(f"acknowledgement for unknown compensation {ack.compensation_id}")
    row.acknowledged_at = row.acknowledged_at or deps.clock()
