"""ERP sync's use cases on the fakes: which orders an approval creates, acknowledgements, resends."""

from __future__ import annotations

import uuid
from functools import partial

import pytest

from contracts import Money
from contracts import aftersales as c
from contracts import decisions as d
from contracts import warehouse as w
from contracts.admin import RestartErpOrder
from contracts.erp import ErpOrderAcknowledged, ErpOrderCancelled, ErpOrderKind
from services.common.runtime import Unprocessable, run_due
from services.domain.erp_order import ErpOrderStatus
from services.domain.errors import NothingToRestart
from services.domain.model import TicketStatus
from services.erp_sync.service import resend, resend_due
from tests.unit import fakes

from .shop import Shop

WITH_ERP = {"shop-1": {"has_erp": True}}


async def approved(shop: Shop, type_: str) -> str:
    ticket_id = await shop.ask(await shop.order(state="COMPLETED"), type_, reason="QUALITY_PROBLEM",
                               evidence=("photo-1",))
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    changed = shop.db.sent("TicketStatusChanged")[-1]
    await shop.deliver("erp_sync", changed.payload, key=changed.key, cause=changed)
    return ticket_id


async def tick(shop: Shop) -> int:
    return await run_due(partial(fakes.FakeErpUnitOfWork, shop.db, "erp_sync"), resend_due(shop.deps))


async def tell_erp_sync(shop: Shop) -> None:
    changed = shop.db.sent("TicketStatusChanged")[-1]
    await shop.deliver("erp_sync", changed.payload, key=changed.key, cause=changed)


async def test_an_exchange_gets_its_shipment_order_only_once_the_goods_passed_inspection() -> None:
    shop = Shop(shop_policies=WITH_ERP)
    ticket_id = await approved(shop, "EXCHANGE")
    assert [r.kind for r in shop.sent("ErpOrderRequested")] == [ErpOrderKind.RETURN_RECEIPT]
    order_id = shop.ticket(ticket_id).order_id
    await shop.deliver("intake", c.SubmitReturnShipment(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1",
                                                        carrier="SF", waybill="SF1"), key=order_id)
    await shop.deliver("warehouse", w.GoodsReceived(
        receipt_id=uuid.uuid4(), ticket_id=ticket_id, order_id=order_id, receipt_type=w.ReceiptType.EXCHANGE_RECEIPT,
        lines=[w.SkuQuantity(sku="SKU-1", quantity=1)], inspection=w.Inspection.PASSED, operator="wh-1",
        received_at=shop.now), key=order_id, producer="wms")
    assert shop.ticket(ticket_id).status == TicketStatus.AWAITING_RESHIPMENT
    await tell_erp_sync(shop)
    assert [r.kind for r in shop.sent("ErpOrderRequested")] == [
        ErpOrderKind.RETURN_RECEIPT, ErpOrderKind.EXCHANGE_SHIPMENT]


async def test_a_withdrawn_ticket_cancels_its_erp_orders_until_the_erp_confirms() -> None:
    shop = Shop(shop_policies=WITH_ERP, erp_max_attempts=2)
    ticket_id = await approved(shop, "RETURN_AND_REFUND")
    order_id = shop.ticket(ticket_id).order_id
    await shop.deliver("intake", c.WithdrawTicket(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1"),
                       key=order_id, producer="buyer-frontend")
    await tell_erp_sync(shop)
    (cancel,) = shop.sent("CancelErpOrder")
    assert (cancel.kind, cancel.attempt) == (ErpOrderKind.RETURN_RECEIPT, 1)
    shop.db.relay()
    shop.later(hours=1)
    assert await tick(shop) == 1  # no confirmation yet: the cancel is resent, same order id
    assert [m.attempt for m in shop.sent("CancelErpOrder")] == [1, 2]
    await shop.deliver("erp_sync", ErpOrderCancelled(erp_order_id=cancel.erp_order_id, order_id=order_id),
                       key=order_id, producer="erp")
    assert shop.db.state.erp_orders[cancel.erp_order_id].status == ErpOrderStatus.CANCELLED
    shop.later(hours=5)
    assert await tick(shop) == 0
    await tell_erp_sync(shop)  # the same closing transition again: nothing more is sent
    assert len(shop.sent("CancelErpOrder")) == 2


async def test_a_cancel_confirmation_for_an_order_never_cancelled_is_dead_lettered() -> None:
    shop = Shop(shop_policies=WITH_ERP)
    await approved(shop, "RETURN_AND_REFUND")
    (request,) = shop.sent("ErpOrderRequested")
    with pytest.raises(Unprocessable):
        await shop.deliver("erp_sync", ErpOrderCancelled(erp_order_id=request.erp_order_id, order_id=request.order_id),
                           key=request.order_id, producer="erp")


async def test_a_shop_without_an_erp_gets_no_orders() -> None:
    shop = Shop()
    await approved(shop, "RETURN_AND_REFUND")
    assert not shop.sent("ErpOrderRequested")
    assert not shop.db.state.erp_orders


async def test_an_acknowledged_order_is_not_resent() -> None:
    shop = Shop(shop_policies=WITH_ERP)
    await approved(shop, "RETURN_AND_REFUND")
    (request,) = shop.sent("ErpOrderRequested")
    await shop.deliver("erp_sync", ErpOrderAcknowledged(erp_order_id=request.erp_order_id, order_id=request.order_id,
                                                        accepted=True, erp_ref="ERP-1"), key=request.order_id)
    shop.db.relay()
    shop.later(hours=5)
    assert await tick(shop) == 0
    assert shop.db.state.erp_orders[request.erp_order_id].status == ErpOrderStatus.ACKNOWLEDGED


async def test_an_unacknowledged_order_is_resent_then_given_up_then_resent_by_hand() -> None:
    shop = Shop(shop_policies=WITH_ERP, erp_max_attempts=2)
    await approved(shop, "RETURN_AND_REFUND")
    (first,) = shop.sent("ErpOrderRequested")
    for _ in range(2):
        shop.db.relay()
        shop.later(hours=5)
        await tick(shop)
    requests = shop.sent("ErpOrderRequested")
    assert [r.erp_order_id for r in requests] == [first.erp_order_id] * 2
    assert requests[-1].attempt == 2
    assert shop.db.state.erp_orders[first.erp_order_id].status == ErpOrderStatus.FAILED
    assert shop.last("OpsAlert").kind == "ERP_SYNC_FAILED"
    assert await shop.run("erp_sync", lambda uow: resend(uow, shop.deps, first.erp_order_id))
    assert shop.db.state.erp_orders[first.erp_order_id].status == ErpOrderStatus.SENT
    assert shop.last("ErpOrderRequested").attempt == 1
    assert not await shop.run("erp_sync", lambda uow: resend(uow, shop.deps, first.erp_order_id))



async def test_an_order_that_gave_up_is_restarted_from_the_back_office_and_only_then() -> None:
    shop = Shop(shop_policies=WITH_ERP, erp_max_attempts=1)
    await approved(shop, "RETURN_AND_REFUND")
    (first,) = shop.sent("ErpOrderRequested")
    restart = RestartErpOrder(erp_order_id=first.erp_order_id, order_id=first.order_id, requested_by="ops-1")
    with pytest.raises(NothingToRestart):  # still waiting for its acknowledgement: nothing gave up
        await shop.deliver("erp_sync", restart, key=first.order_id, producer="back-office")
    shop.db.relay()
    shop.later(hours=5)
    await tick(shop)
    assert shop.db.state.erp_orders[first.erp_order_id].status == ErpOrderStatus.FAILED
    await shop.deliver("erp_sync", restart, key=first.order_id, producer="back-office")
    assert shop.db.state.erp_orders[first.erp_order_id].status == ErpOrderStatus.SENT
    assert shop.last("ErpOrderRequested").erp_order_id == first.erp_order_id


async def test_an_exchange_to_another_variant_receives_the_sold_sku_and_ships_the_variant() -> None:
    shop = Shop(shop_policies=WITH_ERP)
    order_id = await shop.order(state="COMPLETED")
    ticket_id = await shop.ask(order_id, "EXCHANGE", reason="QUALITY_PROBLEM", evidence=("photo-1",),
                               exchange_for=c.ExchangeVariant(sku="SKU-1-XL", unit_price=Money.cny(5_000)))
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await tell_erp_sync(shop)
    await shop.deliver("intake", c.SubmitReturnShipment(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1",
                                                        carrier="SF", waybill="SF1"), key=order_id)
    await shop.deliver("warehouse", w.GoodsReceived(
        receipt_id=uuid.uuid4(), ticket_id=ticket_id, order_id=order_id, receipt_type=w.ReceiptType.EXCHANGE_RECEIPT,
        lines=[w.SkuQuantity(sku="SKU-1", quantity=1)], inspection=w.Inspection.PASSED, operator="wh-1",
        received_at=shop.now), key=order_id, producer="wms")
    await tell_erp_sync(shop)
    assert [(r.kind, [(ln.sku, ln.quantity) for ln in r.lines]) for r in shop.sent("ErpOrderRequested")] == [
        (ErpOrderKind.RETURN_RECEIPT, [("SKU-1", 1)]), (ErpOrderKind.EXCHANGE_SHIPMENT, [("SKU-1-XL", 1)])]
