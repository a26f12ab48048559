"""ERP sync use cases. ERP orders follow the ticket: an approved return or exchange creates a
return-receipt order; an exchange gets its exchange-shipment order once the returned goods passed
inspection (seed 004), never before; a ticket withdrawn, rejected or closed cancels every order
of it not cancelled yet. Each order (and each cancel) is resent with exponential backoff (a
durable schedule in PostgreSQL, never a sleeping handler) until the ERP answers; after the last
try it is FAILED (or CANCEL_FAILED), raised on the ops topic, and can be resent by hand. Shops
without an ERP get nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from contracts import Envelope
from contracts import aftersales as c
from contracts.admin import RestartErpOrder
from contracts.erp import CancelErpOrder, ErpOrderAcknowledged, ErpOrderCancelled, ErpOrderRequested
from contracts.erp import ErpOrderKind as ContractKind
from contracts.ops import OpsAlert, Severity
from contracts.warehouse import SkuQuantity as ContractSkuQuantity
from services.common.quarantine import DueItem, Quarantine
from services.common.retry import backoff
from services.common.routes import Deps, PeriodicJob, periodic
from services.common.runtime import Unprocessable
from services.domain import errors
from services.domain.erp_order import ErpOrder, ErpOrderKind, ErpOrderStatus
from services.domain.shipment import sku_totals

from .repository import ErpUnitOfWork

__all__ = ["Deps", "on_ack", "on_cancelled", "on_ticket_changed", "resend", "resend_due", "restart"]

ON_APPROVAL = frozenset({c.AfterSalesType.RETURN_AND_REFUND, c.AfterSalesType.EXCHANGE})
"""Types whose approval (the buyer is to ship the goods back) creates the return-receipt order."""


def _backoff(deps: Deps) -> Callable[[int], timedelta]:
    return lambda attempts: backoff(deps.settings.erp_retry_base_seconds, attempts)


def _kinds_for(event: c.TicketStatusChanged) -> tuple[ErpOrderKind, ...]:
    """Which ERP orders this transition creates."""
    view, to = event.ticket, event.to_status
    if event.from_status == to:
        return ()
    if to == c.TicketStatus.AWAITING_RETURN and event.from_status == c.TicketStatus.PENDING_REVIEW \
            and view.type in ON_APPROVAL:
        return (ErpOrderKind.RETURN_RECEIPT,)
    if to == c.TicketStatus.AWAITING_RESHIPMENT and view.reissue:
        return (ErpOrderKind.REISSUE_SHIPMENT,)  # 补发: the missing units go out again
    if to == c.TicketStatus.AWAITING_RESHIPMENT and view.type == c.AfterSalesType.EXCHANGE:
        return (ErpOrderKind.EXCHANGE_SHIPMENT,)  # the returned goods passed inspection
    return ()


def concerns_the_erp(event: c.TicketStatusChanged) -> bool:
    """A transition that creates ERP orders, or closes a ticket whose open ones are cancelled
    (the route's ``only``: every other transition is skipped without a transaction)."""
    return bool(_kinds_for(event)) or event.enters(c.TicketStatus.CLOSED)


async def on_ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: ErpUnitOfWork, deps: Deps) -> None:
    event = envelope.payload
    view = event.ticket
    kinds = _kinds_for(event)
    closed = event.enters(c.TicketStatus.CLOSED)
    if not (kinds or closed) or not deps.settings.policy_for(view.shop_id).has_erp:
        return
    if not await uow.tickets.exists(view.ticket_id, envelope.key):
        raise Unprocessable(f"transition of unknown ticket {view.ticket_id}", code="UNKNOWN_TICKET")
    now = deps.clock()
    if closed:
        for order in await uow.erp_orders.for_ticket(view.ticket_id):
            if order.cancel(now, _backoff(deps)):
                _send(uow, order, envelope)
                await uow.erp_orders.save(order)
        return
    for kind in kinds:  # the receipt takes back what was sold; an exchange ships the variant asked for
        lines = sku_totals([(ln.exchange_sku or ln.sku if kind == ErpOrderKind.EXCHANGE_SHIPMENT else ln.sku,
                             ln.quantity) for ln in view.lines])
        order = ErpOrder.first_sent(shop_id=view.shop_id, ticket_id=view.ticket_id, ticket_no=view.ticket_no,
                                    order_id=view.order_id, kind=kind, lines=lines, now=now,
                                    backoff=_backoff(deps))
        if await uow.erp_orders.add(order):
            _send(uow, order, envelope)


def _message_type(order: ErpOrder) -> str:
    return "CancelErpOrder" if order.cancelling else "ErpOrderRequested"


def _send(uow: ErpUnitOfWork, order: ErpOrder, cause: Envelope[Any] | None) -> None:
    """The order's current request: the order itself, or its cancel."""
    if order.cancelling:
        uow.publish(CancelErpOrder(
            erp_order_id=order.erp_order_id, shop_id=order.shop_id, ticket_id=order.ticket_id,
            order_id=order.order_id, kind=ContractKind(order.kind.value), attempt=order.attempts),
            key=order.order_id, cause=cause)
        return
    uow.publish(ErpOrderRequested(
        erp_order_id=order.erp_order_id, shop_id=order.shop_id, ticket_id=order.ticket_id,
        ticket_no=order.ticket_no, order_id=order.order_id, kind=ContractKind(order.kind.value),
        lines=[ContractSkuQuantity(sku=ln.sku, quantity=ln.quantity) for ln in order.lines],
        attempt=order.attempts), key=order.order_id, cause=cause)


async def on_ack(envelope: Envelope[ErpOrderAcknowledged], uow: ErpUnitOfWork, deps: Deps) -> None:
    """Duplicate and late acks change nothing; an ack for an unknown order is dead-lettered."""
    ack = envelope.payload
    order = await uow.erp_orders.get(ack.erp_order_id)
    if order is None or order.order_id != ack.order_id:
        raise Unprocessable(f"acknowledgement for unknown ERP order {ack.erp_order_id}", code="UNKNOWN_ERP_ORDER")
    if ack.accepted:
        order.acknowledge(ack.erp_ref, deps.clock())
    else:
        order.refused(ack.error, deps.clock(), _backoff(deps))
    await uow.erp_orders.save(order)


async def on_cancelled(envelope: Envelope[ErpOrderCancelled], uow: ErpUnitOfWork, deps: Deps) -> None:
    """The ERP confirmed a cancel; a confirmation for an order never cancelled is dead-lettered."""
    confirmed = envelope.payload
    order = await uow.erp_orders.get(confirmed.erp_order_id)
    if order is None or order.order_id != confirmed.order_id:
        raise Unprocessable(f"cancel confirmation for unknown ERP order {confirmed.erp_order_id}",
                            code="UNKNOWN_ERP_ORDER")
    if not order.cancelling and order.status != ErpOrderStatus.CANCELLED:
        raise Unprocessable(f"cancel confirmation for ERP order {confirmed.erp_order_id}, never cancelled",
                            code="UNEXPECTED_CANCEL")
    if order.cancelled():
        await uow.erp_orders.save(order)


def resend_due(deps: Deps) -> PeriodicJob[ErpUnitOfWork]:
    """Orders not acknowledged in time are resent (same id); after the last try they fail, raised."""
    async def due(uow: ErpUnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await uow.erp_orders.due(deps.clock(), skip)

    async def run(uow: ErpUnitOfWork, item: DueItem) -> bool:
        now = deps.clock()
        order = await uow.erp_orders.claim_due(uuid.UUID(item.id), now)
        if order is None:
            return False  # acknowledged meanwhile, or another process resent it
        if await uow.unpublished(_message_type(order), order.order_id):
            order.postpone(now, _backoff(deps))
            await uow.erp_orders.save(order)
            return False  # the last request has not reached Kafka yet: not an attempt the ERP saw
        if order.exhausted(deps.settings.erp_max_attempts):
            what = "cancel of the " if order.cancelling else ""
            order.give_up()
            uow.publish(OpsAlert(
                kind="ERP_SYNC_FAILED", severity=Severity.CRITICAL,
                message=f"ERP {what}{order.kind.value} order for ticket {order.ticket_no} not acknowledged "
                        f"after {order.attempts} attempts: {order.last_error or 'no answer'}"[:500],
                order_id=order.order_id, ticket_id=order.ticket_id), key=order.order_id)
        else:
            order.resent(now, _backoff(deps))
            _send(uow, order, None)
        await uow.erp_orders.save(order)
        return True

    return periodic("resend_due_erp_orders", due, run, deps.settings.scheduler_tick_seconds)


async def resend(uow: ErpUnitOfWork, deps: Deps, erp_order_id: uuid.UUID) -> bool:
    """Ops resends a FAILED order by hand: a fresh round of attempts, same order id."""
    order = await uow.erp_orders.get(erp_order_id)
    if order is None or order.status not in (ErpOrderStatus.FAILED, ErpOrderStatus.CANCEL_FAILED):
        return False
    order.restart(deps.clock(), _backoff(deps))
    _send(uow, order, None)
    await uow.erp_orders.save(order)
    return True


async def restart(envelope: Envelope[RestartErpOrder], uow: ErpUnitOfWork, deps: Deps) -> None:
    """A person restarts an order that gave up, from the back office (``resend`` is the CLI's)."""
    if not await resend(uow, deps, envelope.payload.erp_order_id):
        raise errors.NothingToRestart("This ERP order has not given up: nothing to restart.")
