"""ERP sync's use cases on the fakes: which orders an approval creates, acknowledgements, resends."""

from __future__ import annotations

from functools import partial

from contracts import decisions as d
from contracts.erp import ErpOrderAcknowledged, ErpOrderKind
from services.common.runtime import run_due
from services.domain.erp_order import ErpOrderStatus
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


async def test_an_approved_exchange_sends_a_return_receipt_and_an_exchange_shipment_order() -> None:
    shop = Shop(shop_policies=WITH_ERP)
    await approved(shop, "EXCHANGE")
    assert sorted(r.kind for r in shop.sent("ErpOrderRequested")) == [
        ErpOrderKind.EXCHANGE_SHIPMENT, ErpOrderKind.RETURN_RECEIPT]


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

