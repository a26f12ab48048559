"""Warehouse use cases: tell the WMS what to expect and ship, record what it received and sent."""

from __future__ import annotations

from contracts import Envelope
from contracts import aftersales as c
from contracts import warehouse as w
from services.common.routes import Deps
from services.common.runtime import Unprocessable
from services.common.tickets import actor_from, save_and_announce
from services.domain import ids
from services.domain.erp_order import SkuQuantity
from services.domain.model import Inspection
from services.domain.shipment import Shipment, ShipmentKind, sku_totals

from .repository import Receipt, WarehouseUnitOfWork

__all__ = [
    "Deps",
    "on_dispatched",
    "on_goods_received",
    "on_intercept_result",
    "on_ticket_changed",
    "on_ticket_opened",
]

RECEIPT_TYPE = {
    c.AfterSalesType.RETURN_AND_REFUND: w.ReceiptType.RETURN_RECEIPT,
    c.AfterSalesType.EXCHANGE: w.ReceiptType.EXCHANGE_RECEIPT,
    c.AfterSalesType.REPAIR: w.ReceiptType.REPAIR_RECEIPT,
}

_SHIPMENT_FOR: dict[str, ShipmentKind] = {c.TicketStatus.AWAITING_RESHIPMENT: ShipmentKind.EXCHANGE_SHIPMENT,
                                          c.TicketStatus.IN_REPAIR: ShipmentKind.REPAIR_SHIPMENT,
                                          c.TicketStatus.SENDING_BACK: ShipmentKind.SEND_BACK}


def _shipped(view: c.TicketView, kind: ShipmentKind) -> list[tuple[str, int]]:
    """An exchange ships the variant the buyer asked for; a repair or a send-back, their own goods."""
    if kind == ShipmentKind.EXCHANGE_SHIPMENT:
        return [(ln.exchange_sku or ln.sku, ln.quantity) for ln in view.lines]
    return [(ln.sku, ln.quantity) for ln in view.lines]


def _sku_lines(view: c.TicketView) -> list[w.SkuQuantity]:
    return [w.SkuQuantity(sku=ln.sku, quantity=ln.quantity)
            for ln in sku_totals([(ln.sku, ln.quantity) for ln in view.lines])]


def intercepted(opened: c.TicketOpened) -> bool:
    """A refund-only ticket before shipment: review asks the WMS to stop the parcel (the route's
    ``only``: the warehouse skips every other opened ticket without a transaction)."""
    return opened.ticket.type == c.AfterSalesType.REFUND_ONLY and opened.ticket.before_shipment


def needs_the_wms(event: c.TicketStatusChanged) -> bool:
    """A transition into waiting for the goods back, or into a shipment (the route's ``only``)."""
    return event.from_status != event.to_status and (
        event.to_status == c.TicketStatus.AWAITING_RECEIPT or event.to_status in _SHIPMENT_FOR)


async def on_ticket_opened(envelope: Envelope[c.TicketOpened], uow: WarehouseUnitOfWork, deps: Deps) -> None:
    """Keeps the warehouse's record of intercept requests (review sends the request itself)."""
    if intercepted(envelope.payload):
        view = envelope.payload.ticket
        await uow.intercepts.requested(view.ticket_id, view.order_id, deps.clock())


async def on_ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: WarehouseUnitOfWork,
                            deps: Deps) -> None:
    """Tells the WMS what to expect back, or what to ship (once per ticket)."""
    event = envelope.payload
    view = event.ticket
    if not needs_the_wms(event):
        return
    if not await uow.tickets.exists(view.ticket_id, envelope.key):
        raise Unprocessable(f"transition of unknown ticket {view.ticket_id}", code="UNKNOWN_TICKET")
    if event.to_status == c.TicketStatus.AWAITING_RECEIPT:
        uow.publish(w.ExpectReturn(
            ticket_id=view.ticket_id, ticket_no=view.ticket_no, order_id=view.order_id,
            receipt_type=RECEIPT_TYPE.get(view.type, w.ReceiptType.RETURN_RECEIPT),  # a refused refund-only
            lines=_sku_lines(view),
            carrier=view.return_carrier or "", waybill=view.return_waybill or ""),
            key=view.order_id, cause=envelope)
        return
    if await uow.shipments.open_for(view.ticket_id) is not None:
        return
    kind = ShipmentKind.REISSUE_SHIPMENT if view.reissue else _SHIPMENT_FOR[event.to_status]
    shipment = Shipment.requested(
        shipment_id=ids.caused_by(envelope.event_id, "shipment"),
        ticket_id=view.ticket_id, ticket_no=view.ticket_no, order_id=view.order_id,
        kind=kind, lines=sku_totals(_shipped(view, kind)),
        at=deps.clock())
    await uow.shipments.add(shipment)
    lines = [w.SkuQuantity(sku=ln.sku, quantity=ln.quantity) for ln in shipment.lines]
    if shipment.kind == ShipmentKind.SEND_BACK:
        uow.publish(w.ReturnGoodsToBuyer(shipment_id=shipment.shipment_id, ticket_id=view.ticket_id,
                                         order_id=view.order_id, lines=lines, reason=event.reason),
                    key=view.order_id, cause=envelope)
        return
    uow.publish(w.ShipAfterSales(shipment_id=shipment.shipment_id, ticket_id=view.ticket_id,
                                 order_id=view.order_id, shipment_type=w.ShipmentType(shipment.kind.value),
                                 lines=lines), key=view.order_id, cause=envelope)


async def on_goods_received(envelope: Envelope[w.GoodsReceived], uow: WarehouseUnitOfWork, deps: Deps) -> None:
    """Records the receipt (售后入库) and lets the ticket judge the inspection; a mismatch
    (wrong item, damage, fewer units, unexpected sku or quantity) goes to intervention."""
    msg = envelope.payload
    ticket = await uow.tickets.get(msg.ticket_id)
    if ticket is None or ticket.order_id != msg.order_id:
        raise Unprocessable(f"GoodsReceived for unknown ticket {msg.ticket_id}", code="UNKNOWN_TICKET")
    recorded = await uow.receipts.add(Receipt(
        receipt_id=msg.receipt_id, ticket_id=ticket.ticket_id, ticket_no=ticket.ticket_no,
        order_id=ticket.order_id, receipt_type=msg.receipt_type.value,
        lines=tuple(SkuQuantity(ln.sku, ln.quantity) for ln in msg.lines), inspection=msg.inspection.value,
        operator=msg.operator, received_at=msg.received_at, note=msg.note))
    if not recorded:
        return  # the same receipt again: already applied
    received = {ln.sku: ln.quantity for ln in sku_totals([(ln.sku, ln.quantity) for ln in msg.lines])}
    ticket.record_inspection(actor_from(c.Actor(role=c.Role.WAREHOUSE, id=msg.operator)), deps.clock(),
                             deps.settings.policy_for(ticket.shop_id), Inspection(msg.inspection.value),
                             received, msg.note)
    await save_and_announce(uow, ticket, envelope)


async def on_dispatched(envelope: Envelope[w.AfterSalesDispatched], uow: WarehouseUnitOfWork, deps: Deps) -> None:
    msg = envelope.payload
    shipment = await uow.shipments.get(msg.shipment_id)
    if shipment is None or shipment.ticket_id != msg.ticket_id:
        raise Unprocessable(f"AfterSalesDispatched for unknown shipment {msg.shipment_id}",
                            code="UNKNOWN_SHIPMENT")
    if not shipment.dispatch(msg.carrier, msg.waybill, msg.operator, msg.dispatched_at):
        return
    await uow.shipments.save(shipment)
    ticket = await uow.tickets.get(msg.ticket_id)
    if ticket is None:
        raise Unprocessable(f"AfterSalesDispatched for unknown ticket {msg.ticket_id}", code="UNKNOWN_TICKET")
    ticket.record_reshipment(actor_from(c.Actor(role=c.Role.WAREHOUSE, id=msg.operator)), deps.clock(),
                             deps.settings.policy_for(ticket.shop_id), msg.carrier, msg.waybill)
    await save_and_announce(uow, ticket, envelope)


async def on_repair_progress(envelope: Envelope[w.RepairProgress], uow: WarehouseUnitOfWork, deps: Deps) -> None:
    msg = envelope.payload
    ticket = await uow.tickets.get(msg.ticket_id)
    if ticket is None or ticket.order_id != msg.order_id:
        raise Unprocessable(f"RepairProgress for unknown ticket {msg.ticket_id}", code="UNKNOWN_TICKET")
    ticket.record_repair_progress(actor_from(c.Actor(role=c.Role.WAREHOUSE, id=msg.operator)), msg.at,
                                  deps.settings.policy_for(ticket.shop_id), msg.step.value, msg.note)
    await save_and_announce(uow, ticket, envelope)


async def on_intercept_result(envelope: Envelope[w.InterceptResult], uow: WarehouseUnitOfWork, deps: Deps) -> None:
    """Records the WMS's answer. It may arrive before this worker consumed the ticket's opening
    (the WMS answers review's request): the ticket exists, so the record is made from the answer."""
    msg = envelope.payload
    if not await uow.tickets.exists(msg.ticket_id, msg.order_id):
        raise Unprocessable(f"InterceptResult for unknown ticket {msg.ticket_id}", code="UNKNOWN_TICKET")
    await uow.intercepts.answered(msg.ticket_id, msg.order_id, str(msg.outcome), msg.decided_at)
