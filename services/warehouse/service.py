"""Warehouse use cases: tell the WMS what to expect and ship, record what it received and sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import Envelope
from contracts import aftersales as c
from contracts import warehouse as w
from services.common.runtime import Unprocessable
from services.common.settings import Settings
from services.common.tables import ReceiptRow, ShipmentRow
from services.common.tickets import actor_from, save_and_announce
from services.common.uow import UnitOfWork
from services.domain.model import Inspection
from services.domain.ticket import Ticket

from .repository import WarehouseRepository

RECEIPT_TYPE = {
    c.AfterSalesType.RETURN_AND_REFUND: w.ReceiptType.RETURN_RECEIPT,
    c.AfterSalesType.EXCHANGE: w.ReceiptType.EXCHANGE_RECEIPT,
    c.AfterSalesType.REPAIR: w.ReceiptType.REPAIR_RECEIPT,
}


_ACTS_ON = (c.TicketStatus.AWAITING_RECEIPT, c.TicketStatus.AWAITING_RESHIPMENT, c.TicketStatus.IN_REPAIR)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    clock: Callable[[], datetime]


def _sku_lines(ticket: c.TicketView | Ticket) -> list[w.SkuQuantity]:
    totals: dict[str, int] = {}
    for ln in ticket.lines:
        totals[ln.sku] = totals.get(ln.sku, 0) + ln.quantity
    return [w.SkuQuantity(sku=sku, quantity=q) for sku, q in totals.items()]


async def on_ticket_opened(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    """Keeps the warehouse's record of intercept requests (review sends the request itself)."""
    view = envelope.payload.ticket
    if view.type == c.AfterSalesType.REFUND_ONLY and view.before_shipment:
        await WarehouseRepository(uow.session).record_intercept_request(view.ticket_id, view.order_id,
                                                                        deps.clock())


async def on_ticket_changed(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    event: c.TicketStatusChanged = envelope.payload
    view = event.ticket
    if event.from_status == event.to_status or event.to_status not in _ACTS_ON:
        return
    repo = WarehouseRepository(uow.session)
    if not await repo.ticket_exists(view.ticket_id, envelope.key):
        raise Unprocessable(f"transition of unknown ticket {view.ticket_id}", code="UNKNOWN_TICKET")
    if event.to_status == c.TicketStatus.AWAITING_RECEIPT:
        uow.publish(w.ExpectReturn(
            ticket_id=view.ticket_id, ticket_no=view.ticket_no, order_id=view.order_id,
            receipt_type=RECEIPT_TYPE[view.type], lines=_sku_lines(view),
            carrier=view.return_carrier or "", waybill=view.return_waybill or ""),
            key=view.order_id, cause=envelope)
    else:
        if await repo.open_shipment_for(view.ticket_id) is not None:
            return
        kind = (w.ShipmentType.EXCHANGE_SHIPMENT if event.to_status == c.TicketStatus.AWAITING_RESHIPMENT
                else w.ShipmentType.REPAIR_SHIPMENT)
        shipment_id = uuid.uuid4()
        lines = _sku_lines(view)
        repo.add_shipment(ShipmentRow(
            shipment_id=shipment_id, ticket_id=view.ticket_id, ticket_no=view.ticket_no,
            order_id=view.order_id, shipment_type=kind.value,
            lines=[ln.model_dump() for ln in lines], status="REQUESTED", requested_at=deps.clock()))
        uow.publish(w.ShipAfterSales(shipment_id=shipment_id, ticket_id=view.ticket_id,
                                     order_id=view.order_id, shipment_type=kind, lines=lines),
                    key=view.order_id, cause=envelope)


async def on_goods_received(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    """Records the receipt (售后入库) and lets the ticket judge the inspection; a mismatch
    (wrong item, damage, fewer units, unexpected sku or quantity) goes to intervention."""
    msg: w.GoodsReceived = envelope.payload
    repo = WarehouseRepository(uow.session)
    ticket = await repo.ticket(msg.ticket_id)
    if ticket is None or ticket.order_id != msg.order_id:
        raise Unprocessable(f"GoodsReceived for unknown ticket {msg.ticket_id}", code="UNKNOWN_TICKET")
    recorded = await repo.add_receipt(ReceiptRow(
        receipt_id=msg.receipt_id, ticket_id=ticket.ticket_id, ticket_no=ticket.ticket_no,
        order_id=ticket.order_id, receipt_type=msg.receipt_type.value,
        lines=[ln.model_dump() for ln in msg.lines], inspection=msg.inspection.value,
        operator=msg.operator, received_at=msg.received_at, note=msg.note))
    if not recorded:
        return  # the same receipt again: already applied
    received: dict[str, int] = {}
    for ln in msg.lines:
        received[ln.sku] = received.get(ln.sku, 0) + ln.quantity
    ticket.record_inspection(actor_from(c.Actor(role=c.Role.WAREHOUSE, id=msg.operator)), deps.clock(),
                             deps.settings.policy_for(ticket.shop_id), Inspection(msg.inspection.value),
                             received, msg.note)
    await save_and_announce(uow, ticket, envelope)


async def on_dispatched(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    msg: w.AfterSalesDispatched = envelope.payload
    repo = WarehouseRepository(uow.session)
    shipment = await repo.shipment(msg.shipment_id)
    if shipment is None or shipment.ticket_id != msg.ticket_id:
        raise Unprocessable(f"AfterSalesDispatched for unknown shipment {msg.shipment_id}",
                            code="UNKNOWN_SHIPMENT")
    if shipment.status == "DISPATCHED":
        return
    shipment.status, shipment.carrier, shipment.waybill = "DISPATCHED", msg.carrier, msg.waybill
    shipment.operator, shipment.dispatched_at = msg.operator, msg.dispatched_at
    ticket = await repo.ticket(msg.ticket_id)
    if ticket is None:
        raise Unprocessable(f"AfterSalesDispatched for unknown ticket {msg.ticket_id}", code="UNKNOWN_TICKET")
    ticket.record_reshipment(actor_from(c.Actor(role=c.Role.WAREHOUSE, id=msg.operator)), deps.clock(),
                             deps.settings.policy_for(ticket.shop_id), msg.carrier, msg.waybill)
    await save_and_announce(uow, ticket, envelope)


async def on_intercept_result(envelope: Envelope[Any], uow: UnitOfWork, deps: Deps) -> None:
    """Records the WMS's answer. It may arrive before this worker consumed the ticket's opening
    (the WMS answers review's request): the ticket exists, so the record is made from the answer."""
    msg: w.InterceptResult = envelope.payload
    repo = WarehouseRepository(uow.session)
    if not await repo.ticket_exists(msg.ticket_id, msg.order_id):
        raise Unprocessable(f"InterceptResult for unknown ticket {msg.ticket_id}", code="UNKNOWN_TICKET")
    await repo.record_intercept_result(msg.ticket_id, msg.order_id, msg.outcome.value, msg.decided_at)
