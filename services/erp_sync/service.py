"""ERP sync use cases. An approved return creates a return-receipt order; an exchange also an
exchange-shipment order. Each is resent with exponential backoff (a durable schedule in
PostgreSQL, never a sleeping handler) until acknowledged; after the last try it is FAILED,
raised on the ops topic, and can be resent by hand. Shops without an ERP get nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from contracts import Envelope
from contracts import aftersales as c
from contracts.erp import ErpOrderAcknowledged, ErpOrderRequested
from contracts.erp import ErpOrderKind as ContractKind
from contracts.ops import OpsAlert, Severity
from contracts.warehouse import SkuQuantity as ContractSkuQuantity
from services.common.quarantine import DueItem, Quarantine
from services.common.retry import backoff
from services.common.routes import Deps, PeriodicJob, periodic
from services.common.runtime import Unprocessable
from services.domain.erp_order import ErpOrder, ErpOrderKind, ErpOrderStatus
from services.domain.shipment import sku_totals

from .repository import ErpUnitOfWork

__all__ = ["Deps", "on_ack", "on_ticket_changed", "resend", "resend_due"]

ORDERS_FOR = {
    c.AfterSalesType.RETURN_AND_REFUND: (ErpOrderKind.RETURN_RECEIPT,),
    c.AfterSalesType.EXCHANGE: (ErpOrderKind.RETURN_RECEIPT, ErpOrderKind.EXCHANGE_SHIPMENT),
}


def _backoff(deps: Deps) -> Callable[[int], timedelta]:
    return lambda attempts: backoff(deps.settings.erp_retry_base_seconds, attempts)


async def on_ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: ErpUnitOfWork, deps: Deps) -> None:
    event = envelope.payload
    view = event.ticket
    approved = (event.from_status == c.TicketStatus.PENDING_REVIEW
                and event.to_status == c.TicketStatus.AWAITING_RETURN)
    if not approved or view.type not in ORDERS_FOR:
        return
    if not deps.settings.policy_for(view.shop_id).has_erp:
        return
    if not await uow.tickets.exists(view.ticket_id, envelope.key):
        raise Unprocessable(f"approval of unknown ticket {view.ticket_id}", code="UNKNOWN_TICKET")
    now = deps.clock()
    lines = sku_totals([(ln.sku, ln.quantity) for ln in view.lines])
    for kind in ORDERS_FOR[view.type]:
        order = ErpOrder.first_sent(shop_id=view.shop_id, ticket_id=view.ticket_id, ticket_no=view.ticket_no,
                                    order_id=view.order_id, kind=kind, lines=lines, now=now,
                                    backoff=_backoff(deps))
        if await uow.erp_orders.add(order):
            _send(uow, order, envelope)


def _send(uow: ErpUnitOfWork, order: ErpOrder, cause: Envelope[Any] | None) -> None:
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


def resend_due(deps: Deps) -> PeriodicJob[ErpUnitOfWork]:
    """Orders not acknowledged in time are resent (same id); after the last try they fail, raised."""
    async def due(uow: ErpUnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await uow.erp_orders.due(deps.clock(), skip)

    async def run(uow: ErpUnitOfWork, item: DueItem) -> bool:
        now = deps.clock()
        order = await uow.erp_orders.claim_due(uuid.UUID(item.id), now)
        if order is None:
            return False  # acknowledged meanwhile, or another process resent it
        if await uow.unpublished("ErpOrderRequested", order.order_id):
            order.postpone(now, _backoff(deps))
            await uow.erp_orders.save(order)
            return False  # the last request has not reached Kafka yet: not an attempt the ERP saw
        if order.exhausted(deps.settings.erp_max_attempts):
            order.give_up()
            uow.publish(OpsAlert(
                kind="ERP_SYNC_FAILED", severity=Severity.CRITICAL,
                message=f"ERP {order.kind.value} order for ticket {order.ticket_no} not acknowledged after "
                        f"{order.attempts} attempts: {order.last_error or 'no answer'}"[:500],
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
    if order is None or order.status != ErpOrderStatus.FAILED:
        return False
    order.restart(deps.clock(), _backoff(deps))
    _send(uow, order, None)
    await uow.erp_orders.save(order)
    return True
