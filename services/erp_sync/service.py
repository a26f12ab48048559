"""ERP sync use cases. An approved return creates a return-receipt order; an exchange also an
exchange-shipment order. Each is resent with exponential backoff (a durable schedule in
PostgreSQL, never a sleeping handler) until acknowledged; after the last try it is FAILED,
raised on the ops topic, and can be resent by hand. Shops without an ERP get nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts import Envelope
from contracts import aftersales as c
from contracts.erp import ErpOrderAcknowledged, ErpOrderKind, ErpOrderRequested
from contracts.ops import OpsAlert, Severity
from contracts.warehouse import SkuQuantity
from services.common.quarantine import DueItem, Quarantine
from services.common.retry import backoff
from services.common.runtime import PeriodicJob, Unprocessable, periodic
from services.common.settings import Settings
from services.common.tables import ErpOrderRow
from services.common.uow import UnitOfWork

from .repository import ErpRepository

ORDERS_FOR = {
    c.AfterSalesType.RETURN_AND_REFUND: (ErpOrderKind.RETURN_RECEIPT,),
    c.AfterSalesType.EXCHANGE: (ErpOrderKind.RETURN_RECEIPT, ErpOrderKind.EXCHANGE_SHIPMENT),
}


@dataclass(frozen=True)
class Deps:
    settings: Settings
    clock: Callable[[], datetime]


def _backoff(deps: Deps, attempts: int) -> timedelta:
    return backoff(deps.settings.erp_retry_base_seconds, attempts)


async def on_ticket_changed(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    event: c.TicketStatusChanged = envelope.payload
    view = event.ticket
    approved = (event.from_status == c.TicketStatus.PENDING_REVIEW
                and event.to_status == c.TicketStatus.AWAITING_RETURN)
    if not approved or view.type not in ORDERS_FOR:
        return
    if not deps.settings.policy_for(view.shop_id).has_erp:
        return
    repo = ErpRepository(uow.session)
    if not await repo.ticket_exists(view.ticket_id, envelope.key):
        raise Unprocessable(f"approval of unknown ticket {view.ticket_id}", code="UNKNOWN_TICKET")
    now = deps.clock()
    totals: dict[str, int] = {}
    for ln in view.lines:
        totals[ln.sku] = totals.get(ln.sku, 0) + ln.quantity
    lines = [SkuQuantity(sku=s, quantity=q) for s, q in totals.items()]
    for kind in ORDERS_FOR[view.type]:
        row = ErpOrderRow(erp_order_id=uuid.uuid4(), shop_id=view.shop_id, ticket_id=view.ticket_id,
                          ticket_no=view.ticket_no, order_id=view.order_id, kind=kind.value,
                          lines=[ln.model_dump() for ln in lines], status="SENT", attempts=1,
                          next_attempt_at=now + _backoff(deps, 1), last_error="")
        if await repo.add(row):
            _send(uow, row, envelope)


def _send(uow: UnitOfWork, row: ErpOrderRow, cause: Envelope[Any] | None) -> None:
    uow.publish(ErpOrderRequested(
        erp_order_id=row.erp_order_id, shop_id=row.shop_id, ticket_id=row.ticket_id,
        ticket_no=row.ticket_no, order_id=row.order_id, kind=ErpOrderKind(row.kind),
        lines=[SkuQuantity(**ln) for ln in row.lines], attempt=row.attempts), key=row.order_id, cause=cause)


async def on_ack(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    """Duplicate and late acks change nothing; an ack for an unknown order is dead-lettered."""
    ack: ErpOrderAcknowledged = envelope.payload
    repo = ErpRepository(uow.session)
    row = await repo.get(ack.erp_order_id)
    if row is None or row.order_id != ack.order_id:
        raise Unprocessable(f"acknowledgement for unknown ERP order {ack.erp_order_id}", code="UNKNOWN_ERP_ORDER")
    if row.status == "ACKNOWLEDGED":
        return
    if ack.accepted:
        row.status, row.erp_ref, row.acknowledged_at = "ACKNOWLEDGED", ack.erp_ref, deps.clock()
        row.next_attempt_at = None
        return
    row.last_error = ack.error[:500] or "rejected by the ERP"
    if row.status == "SENT":  # retry sooner than the silent-timeout schedule
        row.next_attempt_at = deps.clock() + _backoff(deps, row.attempts)


def resend_due(deps: Deps) -> PeriodicJob:
    """Orders not acknowledged in time are resent (same id); after the last try they fail, raised."""
    async def due(uow: UnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await ErpRepository(uow.session).due(deps.clock(), skip)

    async def run(uow: UnitOfWork, item: DueItem) -> bool:
        now = deps.clock()
        row = await ErpRepository(uow.session).claim_due(uuid.UUID(item.id), now)
        if row is None:
            return False  # acknowledged meanwhile, or another process resent it
        if await uow.unpublished("ErpOrderRequested", row.order_id):
            row.next_attempt_at = now + _backoff(deps, row.attempts)
            return False  # the last request has not reached Kafka yet: not an attempt the ERP saw
        if row.attempts >= deps.settings.erp_max_attempts:
            row.status, row.next_attempt_at = "FAILED", None
            uow.publish(OpsAlert(
                kind="ERP_SYNC_FAILED", severity=Severity.CRITICAL,
                message=f"ERP {row.kind} order for ticket {row.ticket_no} not acknowledged after "
                        f"{row.attempts} attempts: {row.last_error or 'no answer'}"[:500],
                order_id=row.order_id, ticket_id=row.ticket_id), key=row.order_id)
            return True
        row.attempts += 1
        row.next_attempt_at = now + _backoff(deps, row.attempts)
        _send(uow, row, None)
        return True

    return periodic("resend_due_erp_orders", due, run, deps.settings.scheduler_tick_seconds)


async def resend(uow: UnitOfWork, deps: Deps, erp_order_id: uuid.UUID) -> bool:
    """Ops resends a FAILED order by hand: a fresh round of attempts, same order id."""
    row = await ErpRepository(uow.session).get(erp_order_id)
    if row is None or row.status != "FAILED":
        return False
    row.status, row.attempts, row.last_error = "SENT", 1, ""
    row.next_attempt_at = deps.clock() + _backoff(deps, 1)
    _send(uow, row, None)
    return True
