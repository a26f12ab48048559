"""Warehouse's use cases on the fakes: expected returns, receipts, after-sales shipments."""

from __future__ import annotations

import uuid

import pytest

from contracts import Money
from contracts import aftersales as c
from contracts import decisions as d
from contracts import warehouse as w
from services.common.runtime import Unprocessable
from services.domain import errors
from services.domain.model import AfterSalesType, TicketStatus
from services.domain.shipment import ShipmentStatus
from services.scheduler.service import ticket_deadlines

from .shop import Shop


async def tell_warehouse(shop: Shop) -> None:
    changed = shop.db.sent("TicketStatusChanged")[-1]
    await shop.deliver("warehouse", changed.payload, key=changed.key, cause=changed)


async def shipped_back(shop: Shop, type_: str) -> str:
    """Approved, and the buyer has sent the goods back (the warehouse was told to expect them)."""
    order_id = await shop.order(state="COMPLETED")
    ticket_id = await shop.ask(order_id, type_, reason="QUALITY_PROBLEM", evidence=("photo-1",))
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await shop.deliver("intake", c.SubmitReturnShipment(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1",
                                                        carrier="SF", waybill="SF123"), key=order_id)
    await tell_warehouse(shop)
    return ticket_id


def received(shop: Shop, ticket_id: str, *, inspection: str = "PASSED", quantity: int = 1,
             receipt_id: uuid.UUID | None = None) -> w.GoodsReceived:
    ticket = shop.ticket(ticket_id)
    return w.GoodsReceived(receipt_id=receipt_id or uuid.uuid4(), ticket_id=ticket_id, order_id=ticket.order_id,
                           receipt_type=w.ReceiptType.EXCHANGE_RECEIPT,
                           lines=[w.SkuQuantity(sku="SKU-1", quantity=quantity)],
                           inspection=w.Inspection(inspection), operator="wh-1", received_at=shop.now)


async def test_a_return_on_its_way_is_announced_to_the_wms_with_its_waybill() -> None:
    shop = Shop()
    ticket_id = await shipped_back(shop, "RETURN_AND_REFUND")
    expected = shop.last("ExpectReturn")
    assert (expected.ticket_id, expected.waybill, expected.receipt_type) == (
        ticket_id, "SF123", w.ReceiptType.RETURN_RECEIPT)


async def test_a_receipt_counts_once_even_when_the_wms_sends_it_twice() -> None:
    shop = Shop()
    ticket_id = await shipped_back(shop, "EXCHANGE")
    receipt = received(shop, ticket_id)
    await shop.deliver("warehouse", receipt, key=receipt.order_id, producer="wms")
    await shop.deliver("warehouse", receipt, key=receipt.order_id, producer="wms")
    assert len(shop.db.state.receipts) == 1
    assert shop.ticket(ticket_id).status == TicketStatus.AWAITING_RESHIPMENT


async def test_other_quantities_than_asked_go_to_intervention() -> None:
    shop = Shop()
    ticket_id = await shipped_back(shop, "EXCHANGE")
    receipt = received(shop, ticket_id, quantity=2)  # more than the one unit asked for
    await shop.deliver("warehouse", receipt, key=receipt.order_id, producer="wms")
    assert shop.ticket(ticket_id).status == TicketStatus.INTERVENTION
    assert shop.last("OpsAlert").kind == "INSPECTION_MISMATCH"


async def test_an_exchange_ships_one_replacement_and_records_its_dispatch() -> None:
    shop = Shop()
    ticket_id = await shipped_back(shop, "EXCHANGE")
    receipt = received(shop, ticket_id)
    await shop.deliver("warehouse", receipt, key=receipt.order_id, producer="wms")
    await tell_warehouse(shop)
    await tell_warehouse(shop)  # the same transition redelivered: still one shipment
    (ship,) = shop.sent("ShipAfterSales")
    (shipment,) = shop.db.state.shipments.values()
    assert ship.shipment_id == shipment.shipment_id
    assert shipment.status == ShipmentStatus.REQUESTED
    dispatched = w.AfterSalesDispatched(shipment_id=ship.shipment_id, ticket_id=ticket_id, order_id=ship.order_id,
                                        carrier="SF", waybill="SF999", operator="wh-2", dispatched_at=shop.now)
    await shop.deliver("warehouse", dispatched, key=ship.order_id, producer="wms")
    await shop.deliver("warehouse", dispatched, key=ship.order_id, producer="wms")
    assert shop.db.state.shipments[ship.shipment_id].waybill == "SF999"
    assert shop.ticket(ticket_id).status == TicketStatus.RESHIPPED
    assert [e.to_status for e in shop.sent("TicketStatusChanged")].count(c.TicketStatus.RESHIPPED) == 1


async def test_a_receipt_for_an_unknown_ticket_is_dead_lettered_with_its_reason() -> None:
    shop = Shop()
    order_id = await shop.order()
    with pytest.raises(Unprocessable) as refused:
        await shop.deliver("warehouse", w.GoodsReceived(
            receipt_id=uuid.uuid4(), ticket_id="T-unknown", order_id=order_id,
            receipt_type=w.ReceiptType.RETURN_RECEIPT, lines=[w.SkuQuantity(sku="SKU-1", quantity=1)],
            inspection=w.Inspection.PASSED, operator="wh-1", received_at=shop.now), key=order_id)
    assert refused.value.code == "UNKNOWN_TICKET"
    assert not shop.db.state.receipts


async def test_an_intercept_answer_before_the_request_was_recorded_is_kept() -> None:
    shop = Shop()
    order_id = await shop.order(state="PAID")
    ticket_id = await shop.ask(order_id)
    await shop.deliver("warehouse", w.InterceptResult(ticket_id=ticket_id, order_id=order_id,
                                                      outcome=w.InterceptOutcome.INTERCEPTED, decided_at=shop.now),
                       key=order_id, producer="wms")
    assert shop.db.state.intercepts[ticket_id]["outcome"] == "INTERCEPTED"


async def test_goods_that_arrive_after_the_receipt_window_are_recorded_and_judged() -> None:
    shop = Shop()
    ticket_id = await shipped_back(shop, "RETURN_AND_REFUND")
    shop.later(days=15)
    await shop.tick("scheduler", ticket_deadlines(shop.deps))
    assert shop.ticket(ticket_id).status == TicketStatus.INTERVENTION  # the receipt was overdue
    receipt = received(shop, ticket_id)
    await shop.deliver("warehouse", receipt, key=receipt.order_id, producer="wms")
    assert receipt.receipt_id in shop.db.state.receipts
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND


async def test_goods_for_a_closed_ticket_are_kept_on_record_and_a_person_is_told() -> None:
    shop = Shop()
    ticket_id = await shipped_back(shop, "RETURN_AND_REFUND")
    await shop.deliver("warehouse", received(shop, ticket_id), key=shop.ticket(ticket_id).order_id, producer="wms")
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    late = received(shop, ticket_id)  # a second parcel for the same ticket
    await shop.deliver("warehouse", late, key=late.order_id, producer="wms")
    assert late.receipt_id in shop.db.state.receipts
    assert shop.last("OpsAlert").kind == "UNEXPECTED_RECEIPT"
    assert shop.ticket(ticket_id).status == TicketStatus.REFUNDING


async def test_goods_of_a_withdrawn_return_are_sent_back_before_the_ticket_closes() -> None:
    shop = Shop()
    ticket_id = await shipped_back(shop, "RETURN_AND_REFUND")
    order_id = shop.ticket(ticket_id).order_id
    await shop.deliver("warehouse", received(shop, ticket_id), key=order_id, producer="wms")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND  # inspection passed
    await shop.deliver("intake", c.WithdrawTicket(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1"),
                       key=order_id, producer="buyer-frontend")
    assert shop.ticket(ticket_id).status == TicketStatus.SENDING_BACK
    await tell_warehouse(shop)
    back = shop.last("ReturnGoodsToBuyer")
    assert [(ln.sku, ln.quantity) for ln in back.lines] == [("SKU-1", 1)]
    await shop.deliver("warehouse", w.AfterSalesDispatched(
        shipment_id=back.shipment_id, ticket_id=ticket_id, order_id=order_id, carrier="SF", waybill="SF-BACK",
        operator="wh-1", dispatched_at=shop.now), key=order_id, producer="wms")
    assert shop.ticket(ticket_id).status == TicketStatus.CLOSED
    assert shop.db.state.shipments[back.shipment_id].status == ShipmentStatus.DISPATCHED


async def test_an_exchange_to_another_variant_takes_back_the_sold_sku_and_ships_the_variant() -> None:
    shop = Shop()
    order_id = await shop.order(state="COMPLETED")
    ticket_id = await shop.ask(order_id, "EXCHANGE", reason="QUALITY_PROBLEM", evidence=("photo-1",),
                               exchange_for=c.ExchangeVariant(sku="SKU-1-XL", unit_price=Money.cny(5_000)))
    assert shop.last("TicketOpened").ticket.lines[0].exchange_sku == "SKU-1-XL"
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await shop.deliver("intake", c.SubmitReturnShipment(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1",
                                                        carrier="SF", waybill="SF123"), key=order_id)
    await tell_warehouse(shop)
    assert [(ln.sku, ln.quantity) for ln in shop.last("ExpectReturn").lines] == [("SKU-1", 1)]
    receipt = received(shop, ticket_id)
    await shop.deliver("warehouse", receipt, key=receipt.order_id, producer="wms")
    await tell_warehouse(shop)
    assert [(ln.sku, ln.quantity) for ln in shop.last("ShipAfterSales").lines] == [("SKU-1-XL", 1)]


async def cannot_be_repaired(shop: Shop) -> str:
    """A repair whose item reached the warehouse and that the service centre cannot repair."""
    ticket_id = await shipped_back(shop, "REPAIR")
    ticket = shop.ticket(ticket_id)
    await shop.deliver("warehouse", w.GoodsReceived(
        receipt_id=uuid.uuid4(), ticket_id=ticket_id, order_id=ticket.order_id,
        receipt_type=w.ReceiptType.REPAIR_RECEIPT, lines=[w.SkuQuantity(sku="SKU-1", quantity=1)],
        inspection=w.Inspection.PASSED, operator="wh-1", received_at=shop.now), key=ticket.order_id, producer="wms")
    await shop.deliver("warehouse", w.RepairProgress(
        ticket_id=ticket_id, order_id=ticket.order_id, step=w.RepairStep.CANNOT_REPAIR, note="no spare board",
        operator="svc-1", at=shop.now), key=ticket.order_id, producer="wms")
    assert shop.ticket(ticket_id).status == TicketStatus.INTERVENTION
    return ticket_id


async def test_an_item_that_cannot_be_repaired_is_refunded_what_it_was_paid_instead() -> None:
    shop = Shop()
    ticket_id = await cannot_be_repaired(shop)
    await shop.decide(d.ResolveIntervention, ticket_id, "ops", "ops-1", outcome=d.InterventionOutcome.REFUND_INSTEAD,
                      note="buyer takes the refund")
    ticket = shop.ticket(ticket_id)
    assert (ticket.type, ticket.status, ticket.refund_total_cents) == (
        AfterSalesType.RETURN_AND_REFUND, TicketStatus.PENDING_REFUND, 5_000)  # one of two units paid 10,000


async def test_an_item_that_cannot_be_repaired_is_replaced_instead() -> None:
    shop = Shop()
    ticket_id = await cannot_be_repaired(shop)
    await shop.decide(d.ResolveIntervention, ticket_id, "ops", "ops-1",
                      outcome=d.InterventionOutcome.EXCHANGE_INSTEAD, note="buyer takes a new one")
    assert (shop.ticket(ticket_id).type, shop.ticket(ticket_id).status) == (
        AfterSalesType.EXCHANGE, TicketStatus.AWAITING_RESHIPMENT)
    await tell_warehouse(shop)
    ship = shop.last("ShipAfterSales")
    assert (ship.shipment_type, [(ln.sku, ln.quantity) for ln in ship.lines]) == (
        w.ShipmentType.EXCHANGE_SHIPMENT, [("SKU-1", 1)])


async def test_only_a_repair_can_become_a_refund_instead() -> None:
    shop = Shop()
    ticket_id = await shipped_back(shop, "EXCHANGE")
    receipt = received(shop, ticket_id, quantity=2)  # a mismatch: intervention
    await shop.deliver("warehouse", receipt, key=receipt.order_id, producer="wms")
    with pytest.raises(errors.IllegalTransition):
        await shop.decide(d.ResolveIntervention, ticket_id, "ops", "ops-1",
                          outcome=d.InterventionOutcome.REFUND_INSTEAD, note="no")
