"""Whole after-sales flows through real topics and separate worker processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from contracts import aftersales as c
from contracts import decisions as d
from contracts import orders as o
from contracts import warehouse as w
from contracts.ops import SettlementKind
from services.actors import Line
from services.common.procs import PRINCIPAL, worker_of
from services.common.tables import (
    ErpOrderRow,
    PaymentChannelRefund,
    ReceiptRow,
    RefundRow,
    SettlementEntryRow,
)
from services.harness import quiet
from services.replay.rebuild import scratch_database
from tests.integration.helpers import eventually

from .conftest import E2E_ENV

pytestmark = pytest.mark.asyncio(loop_scope="session")

MUG = Line("SKU-MUG", 3, 3_900, 10_000)
LAMP = Line("SKU-LAMP", 1, 25_900, 23_900)
TV = Line("SKU-TV-55", 1, 699_900, 659_900)
PHOTO = ["oss://evidence/1.jpg"]


def types_for(world, oid):  # type: ignore[no-untyped-def]
    return [e.type for e in world.watcher.messages(oid)]


async def test_walking_skeleton_refund_only_before_shipment_completes(world):
    oid = await world.place_order([MUG], shop="shop-fast", shipping_cents=600)
    await world.request(oid, "REFUND_ONLY", [(1, 3)])
    ticket = await world.opened(oid)
    assert ticket.refund_total.cents == 10_000
    await world.status(ticket, "COMPLETED")
    refund = await world.watcher.wait_for(oid, lambda e: e.type == "RefundSucceeded")
    assert refund.payload.amount.cents == 10_600  # the whole order before shipment: shipping too
    await world.watcher.wait_for(oid, lambda e: e.type == "OrderClosed")
    assert {"TicketOpened", "InterceptShipment", "ExecuteRefund", "SettlementAdjusted", "CloseOrder"} <= set(
        types_for(world, oid))


async def test_an_order_enters_the_settlement_once_and_a_full_refund_nets_it_to_zero(world, sessions):
    """Refunded in full before shipment (10,000 + 600 shipping): finance gives back the whole
    fee (the demo order system charges paid // 50 = 200), and the settlement worker enters the
    order when it closes, with its refund: the two lines net to zero."""
    oid = await world.place_order([MUG], shop="shop-fast", shipping_cents=600)
    await world.request(oid, "REFUND_ONLY", [(1, 3)])
    ticket = await world.opened(oid)
    await world.status(ticket, "COMPLETED")
    adjusted = await world.watcher.wait_for(oid, lambda e: e.type == "SettlementAdjusted")
    assert (adjusted.payload.refund.cents, adjusted.payload.fee_given_back.cents, adjusted.payload.kind) == (
        10_600, 200, SettlementKind.REFUND)

    async def entries() -> list[tuple[str, int, int, bool]]:
        async with sessions() as session:
            rows = (await session.execute(select(SettlementEntryRow).where(
                SettlementEntryRow.order_id == oid))).scalars().all()
        return sorted((r.kind, r.paid_cents, r.fee_cents, r.entered_on is not None) for r in rows)

    async def entered() -> bool:
        return len(await entries()) == 2 and all(done for *_, done in await entries())

    await eventually(entered, timeout=60)
    assert await entries() == [("ORDER", 10_600, 200, True), ("REFUND", -10_600, -200, True)]


async def test_cancel_of_an_unpaid_order(world):
    oid = await world.place_order([MUG], state="PENDING_PAYMENT")
    await world.request(oid, "CANCEL", [])
    ticket = await world.opened(oid)
    await world.status(ticket, "COMPLETED")
    closed = await world.watcher.wait_for(oid, lambda e: e.type == "OrderClosed")
    assert closed.payload.reason == "cancelled by the buyer"


async def test_two_step_refund_with_send_back_and_manager_threshold(world):
    oid = await world.place_order([TV], state="SHIPPED")
    await world.request(oid, "REFUND_ONLY", [(1, 1)], reason="NOT_AS_DESCRIBED")
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.status(t, "PENDING_MANAGER")
    await world.decide(d.ApproveLargeRefund, t, "manager", "mgr-1")
    await world.status(t, "PENDING_REFUND")
    await world.decide(d.SendBackRefund, t, "finance", "fin-1", reason="confirm the model")
    await world.status(t, "PENDING_REVIEW", nth=1)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1", note="confirmed")
    await world.status(t, "PENDING_MANAGER", nth=2)
    await world.decide(d.ApproveLargeRefund, t, "manager", "mgr-1")
    await world.status(t, "PENDING_REFUND", nth=2)
    await world.decide(d.ApproveRefund, t, "finance", "ops-1")  # maker-checker: refused
    rejected = await world.rejected(oid)
    assert rejected.payload.code == "MAKER_CHECKER"
    await world.decide(d.ApproveRefund, t, "finance", "fin-1")
    await world.status(t, "COMPLETED")


async def test_return_and_refund_with_erp_acknowledged(world, sessions):
    oid = await world.place_order([MUG], shop="shop-erp", state="COMPLETED")
    await world.request(oid, "RETURN_AND_REFUND", [(1, 2)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.status(t, "AWAITING_RETURN")
    ack = await world.watcher.wait_for(oid, lambda e: e.type == "ErpOrderAcknowledged")
    assert ack.payload.accepted
    await world.ship_back(t, "ZTO", "ZT1")
    await world.status(t, "PENDING_REFUND")
    await world.decide(d.ApproveRefund, t, "finance", "fin-1")
    await world.status(t, "COMPLETED")
    async with sessions() as session:
        receipts = (await session.execute(select(ReceiptRow).where(ReceiptRow.order_id == oid))).scalars().all()
    assert [(r.receipt_type, r.inspection, r.lines) for r in receipts] == [
        ("RETURN_RECEIPT", "PASSED", [{"sku": "SKU-MUG", "quantity": 2}])]
    # the buyer was told each step that was theirs to know, in order, once
    await world.watcher.wait_for(oid, lambda e: e.type == "BuyerNotification" and e.payload.template == "REFUNDED")
    told = [e.payload for e in world.watcher.messages(oid, "BuyerNotification")]
    assert [n.template for n in told] == ["OPENED", "RETURN_APPROVED", "GOODS_RECEIVED", "REFUNDED"]
    assert "deadline" in told[1].params
    assert told[1].params["return_address"] == "Returns warehouse, 1 Test Road"  # the shop's return desk
    assert told[3].params["amount"] == f"{t.refund_total.cents // 100}.{t.refund_total.cents % 100:02d} CNY"


async def test_return_with_mismatch_sent_back_closes_without_refund(world, scenario, sessions):
    oid = await world.place_order([LAMP], state="COMPLETED")
    await scenario("wms", oid, "WRONG_ITEM")
    await world.request(oid, "RETURN_AND_REFUND", [(1, 1)], reason="QUALITY_PROBLEM", evidence=PHOTO)
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "YTO", "YT1")
    await world.status(t, "INTERVENTION")
    await world.decide(d.ResolveIntervention, t, "ops", "ops-2", outcome=d.InterventionOutcome.SEND_BACK,
                       note="a different lamp came back")
    await world.status(t, "CLOSED")
    async with sessions() as session:
        refunds = (await session.execute(select(func.count()).select_from(RefundRow)
                                         .where(RefundRow.order_id == oid))).scalar_one()
    assert refunds == 0


async def test_erp_orders_follow_the_ticket(world):
    """An exchange's shipment order reaches the ERP only after the returned goods passed
    inspection; a withdrawn return cancels the receipt order the ERP already has."""
    oid = await world.place_order([MUG], shop="shop-erp", state="COMPLETED")
    await world.request(oid, "EXCHANGE", [(1, 1)], reason="QUALITY_PROBLEM", evidence=PHOTO)
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    receipt = await world.watcher.wait_for(oid, lambda e: e.type == "ErpOrderRequested")
    assert receipt.payload.kind == "RETURN_RECEIPT"
    await world.ship_back(t, "SF", "SF-ERP")
    passed = await world.status(t, "AWAITING_RESHIPMENT")
    shipment = await world.watcher.wait_for(
        oid, lambda e: e.type == "ErpOrderRequested" and e.payload.kind == "EXCHANGE_SHIPMENT")
    assert shipment.causation_id == passed.event_id  # sent because the inspection passed, not before

    oid2 = await world.place_order([MUG], shop="shop-erp", state="COMPLETED")
    await world.request(oid2, "RETURN_AND_REFUND", [(1, 1)])
    t2 = await world.opened(oid2)
    await world.decide(d.ApproveTicket, t2, "ops", "ops-1")
    await world.watcher.wait_for(oid2, lambda e: e.type == "ErpOrderAcknowledged")
    await world.buyer(c.WithdrawTicket(ticket_id=t2.ticket_id, order_id=oid2, buyer_id="buyer-1"))
    await world.status(t2, "CLOSED")
    cancel = await world.watcher.wait_for(oid2, lambda e: e.type == "CancelErpOrder")
    done = await world.watcher.wait_for(oid2, lambda e: e.type == "ErpOrderCancelled")
    assert done.payload.erp_order_id == cancel.payload.erp_order_id


async def test_exchange_to_completion_and_merchant_without_erp_sends_nothing(world):
    oid = await world.place_order([MUG], state="COMPLETED")
    await world.request(oid, "EXCHANGE", [(1, 1)], reason="WRONG_SPEC_CHOSEN")
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "SF", "SF1")
    dispatched = await world.status(t, "RESHIPPED")
    assert dispatched.payload.actor.role == c.Role.WAREHOUSE
    await world.buyer(c.ConfirmExchangeReceived(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1"))
    await world.status(t, "COMPLETED")
    assert "ErpOrderRequested" not in types_for(world, oid)


async def test_an_exchange_to_another_size_ships_it_and_another_price_is_refused(world):
    """Seed 004 (选错型号): the MUG comes back and its other colour goes out, at the same list
    price (3,900); a variant listed at another price is refused with the reason."""
    oid = await world.place_order([MUG], shop="shop-erp", state="COMPLETED")
    await world.request(oid, "EXCHANGE", [(1, 1)], reason="WRONG_SPEC_CHOSEN", variants={1: ("SKU-MUG-RED", 3_900)})
    t = await world.opened(oid)
    assert t.lines[0].exchange_sku == "SKU-MUG-RED"
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "SF", "SF-VARIANT")
    expected = await world.watcher.wait_for(oid, lambda e: e.type == "ExpectReturn")
    assert [(ln.sku, ln.quantity) for ln in expected.payload.lines] == [("SKU-MUG", 1)]
    await world.status(t, "RESHIPPED")
    shipped = await world.watcher.wait_for(oid, lambda e: e.type == "ShipAfterSales")
    assert [(ln.sku, ln.quantity) for ln in shipped.payload.lines] == [("SKU-MUG-RED", 1)]
    erp = await world.watcher.wait_for(
        oid, lambda e: e.type == "ErpOrderRequested" and e.payload.kind == "EXCHANGE_SHIPMENT")
    assert [ln.sku for ln in erp.payload.lines] == ["SKU-MUG-RED"]
    await world.buyer(c.ConfirmExchangeReceived(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1"))
    await world.status(t, "COMPLETED")

    other = await world.place_order([MUG], state="COMPLETED")
    await world.request(other, "EXCHANGE", [(1, 1)], reason="WRONG_SPEC_CHOSEN",
                        variants={1: ("SKU-MUG-XL", 4_900)})
    refused = await world.rejected(other)
    assert refused.payload.code == "VARIANT_PRICE_DIFFERS"


async def test_a_missing_unit_is_sent_again_instead_of_refunded(world):
    """补发: the buyer says a mug was missing; ops reissues it instead of refunding. The warehouse
    and the ERP get a reissue shipment of the same sku, the buyer confirms it, and no money moves."""
    oid = await world.place_order([MUG], shop="shop-erp", state="SHIPPED")
    await world.request(oid, "REFUND_ONLY", [(1, 1)], reason="MISSING_ITEM", evidence=PHOTO)
    t = await world.opened(oid)
    await world.decide(d.ReissueMissingUnits, t, "ops", "ops-1", note="one mug missing from the box")
    reissued = await world.status(t, "AWAITING_RESHIPMENT")
    assert (reissued.payload.ticket.reissue, reissued.payload.ticket.refund_total.cents) == (True, 0)
    shipped = await world.watcher.wait_for(oid, lambda e: e.type == "ShipAfterSales")
    assert (shipped.payload.shipment_type, [(ln.sku, ln.quantity) for ln in shipped.payload.lines]) == (
        w.ShipmentType.REISSUE_SHIPMENT, [("SKU-MUG", 1)])
    erp = await world.watcher.wait_for(oid, lambda e: e.type == "ErpOrderRequested")
    assert erp.payload.kind == "REISSUE_SHIPMENT"
    await world.status(t, "RESHIPPED")
    await world.buyer(c.ConfirmExchangeReceived(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1"))
    await world.status(t, "COMPLETED")
    assert "ExecuteRefund" not in types_for(world, oid)


async def test_a_refused_parcel_comes_back_as_the_receipt_and_then_the_money_goes(world):
    """拒收 (seed 003): a refund-only after shipment; the buyer refuses the parcel, the carrier brings
    it back, the warehouse receives it, and only then is the refund paid."""
    oid = await world.place_order([LAMP], shop="shop-fast", state="SHIPPED")
    await world.request(oid, "REFUND_ONLY", [(1, 1)])
    t = await world.opened(oid)
    await world.buyer(c.RefuseDelivery(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1",
                                       carrier="SF", waybill="SF-REFUSED"))
    waiting = await world.status(t, "AWAITING_RECEIPT")
    assert waiting.payload.ticket.delivery_refused
    expected = await world.watcher.wait_for(oid, lambda e: e.type == "ExpectReturn")
    assert expected.payload.waybill == "SF-REFUSED"
    await world.status(t, "COMPLETED")
    kinds = types_for(world, oid)
    assert kinds.index("GoodsReceived") < kinds.index("ExecuteRefund")  # the money left once the goods were back


async def test_repair_to_completion(world):
    oid = await world.place_order([LAMP], state="COMPLETED")
    await world.request(oid, "REPAIR", [(1, 1)], reason="QUALITY_PROBLEM", evidence=PHOTO)
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "SF", "SF2")
    await world.status(t, "IN_REPAIR")
    await world.status(t, "RESHIPPED")
    await world.buyer(c.ConfirmExchangeReceived(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1"))
    await world.status(t, "COMPLETED")
    # the service centre's steps are on the timeline and the buyer heard of each, in order
    steps = [e.payload.reason for e in world.watcher.messages(oid, "TicketStatusChanged")
             if e.payload.action == "repair_progress"]
    assert steps == ["DIAGNOSED: worn contact replaced", "REPAIRED: tested for 30 min"]
    await world.watcher.wait_for(oid, lambda e: e.type == "BuyerNotification" and e.payload.template == "COMPLETED")
    told = [(n.payload.template, n.payload.params.get("step"))
            for n in world.watcher.messages(oid, "BuyerNotification")]
    assert told[-4:] == [("REPAIR_PROGRESS", "DIAGNOSED"), ("REPAIR_PROGRESS", "REPAIRED"), ("RESHIPPED", None),
                         ("COMPLETED", None)]


async def test_an_item_that_cannot_be_repaired_goes_to_a_person_who_refunds_it_instead(world, scenario):
    oid = await world.place_order([LAMP], state="COMPLETED")
    await scenario("wms", oid, "cannot_repair")
    await world.request(oid, "REPAIR", [(1, 1)], reason="QUALITY_PROBLEM", evidence=PHOTO)
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "SF", "SF3")
    moved = await world.status(t, "INTERVENTION")
    assert (moved.payload.action, moved.payload.reason) == ("repair_progress", "CANNOT_REPAIR: no spare board")
    await world.watcher.wait_for(oid, lambda e: e.type == "OpsAlert" and e.payload.kind == "REPAIR_IMPOSSIBLE")
    await world.watcher.wait_for(oid, lambda e: e.type == "BuyerNotification"
                                 and e.payload.params.get("step") == "CANNOT_REPAIR")
    await world.decide(d.ResolveIntervention, t, "ops", "ops-1", outcome=d.InterventionOutcome.REFUND_INSTEAD,
                       note="no spare board: the buyer takes the refund")
    await world.status(t, "PENDING_REFUND")
    await world.decide(d.ApproveRefund, t, "finance", "fin-1")
    await world.status(t, "COMPLETED")
    paid = await world.watcher.wait_for(oid, lambda e: e.type == "RefundSucceeded")
    assert paid.payload.amount.cents == LAMP.paid_cents


async def test_an_instant_refund_whose_goods_were_dispatched_pays_nothing_and_goes_back_to_review(world, scenario):
    """Within 30 minutes of payment the refund is approved at once, but the money waits for the
    intercept; the warehouse says the parcel already left, so a person reviews and no cent moves."""
    oid = await world.place_order([MUG], shop="shop-fast")
    await scenario("wms", oid, "already_dispatched")
    await world.request(oid, "REFUND_ONLY", [(1, 1)])
    t = await world.opened(oid)
    held = await world.status(t, "PENDING_REFUND")
    assert held.payload.actor.id == "system"
    back = await world.status(t, "PENDING_REVIEW")
    assert "already dispatched" in back.payload.reason
    alert = await world.watcher.wait_for(oid, lambda e: e.type == "OpsAlert" and e.payload.kind == "INTERCEPT_FAILED")
    assert alert.payload.ticket_id == t.ticket_id
    await world.decide(d.RejectTicket, t, "ops", "ops-1", reason="parcel on its way; refuse delivery to get a refund")
    await world.status(t, "CLOSED")
    assert "ExecuteRefund" not in types_for(world, oid)
    assert not any("-> REFUNDING" in step for step in world.journey(t))


async def test_a_payment_after_the_order_closed_is_refunded_automatically(world):
    """The order system closed the order for its payment timeout, then the payment arrived: a
    system ticket refunds all of it, shipping included, with no person involved, and ops is told."""
    oid = await world.place_order([MUG], state="PENDING_PAYMENT", shipping_cents=600)
    await world.bus.publish(o.OrderClosed(order_id=oid, closed_at=datetime.now(UTC), reason="payment timed out"),
                            key=oid)
    await world.projected(oid, "CLOSED")
    await world.bus.publish(o.OrderPaid(order_id=oid, paid_at=datetime.now(UTC)), key=oid)
    t = await world.opened(oid)
    assert t.reason_code == "LATE_PAYMENT"
    await world.status(t, "COMPLETED")
    paid = await world.watcher.wait_for(oid, lambda e: e.type == "RefundSucceeded")
    assert paid.payload.amount.cents == 10_000 + 600
    alert = await world.watcher.wait_for(oid, lambda e: e.type == "OpsAlert" and e.payload.kind == "LATE_PAYMENT")
    assert alert.payload.ticket_id == t.ticket_id


async def test_intercept_failed_leaves_the_refund_to_a_person(world, scenario):
    # paid two hours ago: too late for the instant approval, so the intercept result decides
    oid = await world.place_order([MUG], shop="shop-fast", placed_at=datetime.now(UTC) - timedelta(hours=2))
    await scenario("wms", oid, "already_dispatched")
    await world.request(oid, "REFUND_ONLY", [(1, 1)])
    t = await world.opened(oid)
    result = await world.watcher.wait_for(oid, lambda e: e.type == "InterceptResult")
    assert result.payload.outcome == w.InterceptOutcome.ALREADY_DISPATCHED
    # review applied the result (and would have approved in the same transaction): the ticket
    # announced it stays with a person
    noted = await world.watcher.wait_for(oid, lambda e: e.type == "TicketStatusChanged"
                                         and "already dispatched" in e.payload.reason)
    assert noted.payload.to_status == "PENDING_REVIEW"
    assert not any("-> REFUNDING" in step for step in world.journey(t))
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.status(t, "COMPLETED")


async def test_payment_channel_timeout_then_success_pays_exactly_once(world, scenario, sessions):
    oid = await world.place_order([LAMP], shop="shop-fast", state="SHIPPED")
    world.timing_races.add(oid)  # 1-second resends against the channel's late answer
    await scenario("payment", oid, "timeout_once")
    await world.request(oid, "REFUND_ONLY", [(1, 1)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.status(t, "COMPLETED", timeout=30)
    async with sessions() as session:
        refund = (await session.execute(select(RefundRow).where(RefundRow.order_id == oid))).scalar_one()
        channel = (await session.execute(select(PaymentChannelRefund).where(
            PaymentChannelRefund.refund_id == refund.refund_id))).scalars().all()
    assert refund.attempts >= 2
    assert refund.status == "SUCCEEDED"
    assert len(channel) == 1
    assert channel[0].executions >= 2
    assert channel[0].amount_cents == 23_900
    assert len(world.messages_of(oid, "RefundSucceeded")) >= 1


async def test_failed_refund_alerts_then_finance_retry_succeeds(world, scenario):
    oid = await world.place_order([LAMP], shop="shop-fast", state="SHIPPED")
    await scenario("payment", oid, "fail")
    await world.request(oid, "REFUND_ONLY", [(1, 1)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.status(t, "REFUND_FAILED")
    alert = await world.watcher.wait_for(oid, lambda e: e.type == "OpsAlert" and e.payload.kind == "REFUND_FAILED")
    assert "DECLINED" in alert.payload.message
    await scenario("payment", oid, "ok")
    await world.decide(d.RetryRefund, t, "finance", "fin-1")
    await world.status(t, "COMPLETED")


async def test_erp_failures_recover_and_permanent_failure_reaches_ops(world, scenario, sessions):
    await scenario("erp", "shop-erp", "fail:2")
    oid = await world.place_order([MUG], shop="shop-erp", state="COMPLETED")
    world.timing_races.add(oid)  # half-second resends against the ERP's third answer
    await world.request(oid, "EXCHANGE", [(1, 1)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")

    async def acknowledged() -> bool:
        async with sessions() as session:
            rows = (await session.execute(select(ErpOrderRow).where(ErpOrderRow.order_id == oid))).scalars().all()
        # the receipt order, on approval (the exchange shipment waits for the goods to come back)
        return [(r.kind, r.status, r.attempts) for r in rows] == [("RETURN_RECEIPT", "ACKNOWLEDGED", 3)]
    await eventually(acknowledged)

    await scenario("erp", "shop-erp", "never")
    oid2 = await world.place_order([MUG], shop="shop-erp", state="COMPLETED")
    await world.request(oid2, "RETURN_AND_REFUND", [(1, 1)])
    t2 = await world.opened(oid2)
    await world.decide(d.ApproveTicket, t2, "ops", "ops-1")
    alert = await world.watcher.wait_for(oid2, lambda e: e.type == "OpsAlert" and e.payload.kind == "ERP_SYNC_FAILED",
                                         timeout=30)
    assert "not acknowledged after 3 attempts" in alert.payload.message


async def test_waiting_for_the_return_times_out_and_reshipment_auto_confirms(world):
    oid = await world.place_order([MUG], shop="shop-return-clock", state="COMPLETED")
    await world.request(oid, "RETURN_AND_REFUND", [(1, 1)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    closed = await world.status(t, "CLOSED", timeout=20)
    assert closed.payload.actor.role == c.Role.SYSTEM
    assert "timed out" in closed.payload.reason
    oid2 = await world.place_order([MUG], shop="shop-confirm-clock", state="COMPLETED")
    await world.request(oid2, "EXCHANGE", [(1, 1)])
    t2 = await world.opened(oid2)
    await world.decide(d.ApproveTicket, t2, "ops", "ops-1")
    await world.ship_back(t2, "SF", "SF3")
    done = await world.status(t2, "COMPLETED", timeout=20)
    assert done.payload.actor.role == c.Role.SYSTEM


async def test_hostile_wms_messages_end_in_the_dlq_or_with_a_person_never_a_second_refund(world, sessions):
    oid = await world.place_order([MUG], shop="shop-fast", state="COMPLETED")
    await world.request(oid, "RETURN_AND_REFUND", [(1, 1)])
    t = await world.opened(oid)
    now = datetime.now(UTC)
    await world.bus.publish(w.GoodsReceived(
        receipt_id=uuid.uuid4(), ticket_id="no-such-ticket", order_id=oid, receipt_type=w.ReceiptType.RETURN_RECEIPT,
        lines=[w.SkuQuantity(sku="SKU-MUG", quantity=1)], inspection=w.Inspection.PASSED, operator="wh",
        received_at=now), key=oid)
    letter = await world.watcher.wait_for(oid, lambda e: e.type == "DeadLetter")
    assert "unknown ticket" in letter.payload.reason
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "SF", "SF4")
    await world.status(t, "PENDING_REFUND")
    await world.decide(d.ApproveRefund, t, "finance", "fin-1")
    await world.status(t, "COMPLETED")
    duplicate = w.GoodsReceived(
        receipt_id=uuid.uuid4(), ticket_id=t.ticket_id, order_id=oid, receipt_type=w.ReceiptType.RETURN_RECEIPT,
        lines=[w.SkuQuantity(sku="SKU-OTHER", quantity=5)], inspection=w.Inspection.PASSED, operator="wh",
        received_at=now)
    await world.bus.publish(duplicate, key=oid)  # goods the completed ticket does not expect: a person acts
    alert = await world.watcher.wait_for(
        oid, lambda e: e.type == "OpsAlert" and e.payload.kind == "UNEXPECTED_RECEIPT")
    assert alert.payload.ticket_id == t.ticket_id
    async with sessions() as session:
        kept = (await session.execute(select(ReceiptRow).where(
            ReceiptRow.receipt_id == duplicate.receipt_id))).scalar_one()  # the physical fact is kept
        assert kept.ticket_id == t.ticket_id
        refunds = (await session.execute(select(func.count()).select_from(RefundRow)
                                         .where(RefundRow.order_id == oid))).scalar_one()
    assert refunds == 1


async def test_a_wrong_sku_or_quantity_from_the_wms_goes_to_intervention(world, scenario):
    oid = await world.place_order([MUG], state="COMPLETED")
    await scenario("wms", oid, "hold")
    await world.request(oid, "RETURN_AND_REFUND", [(1, 1)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "SF", "SF5")
    await world.status(t, "AWAITING_RECEIPT")
    await world.bus.publish(w.GoodsReceived(
        receipt_id=uuid.uuid4(), ticket_id=t.ticket_id, order_id=oid, receipt_type=w.ReceiptType.RETURN_RECEIPT,
        lines=[w.SkuQuantity(sku="SKU-MUG", quantity=3), w.SkuQuantity(sku="SKU-BRICK", quantity=1)],
        inspection=w.Inspection.PASSED, operator="wh-9", received_at=datetime.now(UTC)), key=oid)
    moved = await world.status(t, "INTERVENTION")
    assert "MISMATCH" in moved.payload.reason
    alert = await world.watcher.wait_for(
        oid, lambda e: e.type == "OpsAlert" and e.payload.kind == "INSPECTION_MISMATCH")
    assert t.ticket_no in alert.payload.message


async def test_killed_finance_processes_lose_nothing(world, workers, sessions):
    """Both finance replicas are SIGKILLed the moment the ticket enters REFUNDING (the refund
    may be reserved, sent or answered, nothing committed to Kafka yet); restarted, they pay once."""
    oid = await world.place_order([LAMP], shop="shop-fast", state="SHIPPED")
    world.timing_races.add(oid)  # its answers wait, unread, while finance restarts and resends
    await world.request(oid, "REFUND_ONLY", [(1, 1)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.status(t, "REFUNDING")
    for name in ("finance", "finance.2"):
        workers.kill(name)
    workers.start(["finance", "finance.2"])
    await world.status(t, "COMPLETED", timeout=60)
    async with sessions() as session:
        paid = (await session.execute(select(PaymentChannelRefund).join(
            RefundRow, RefundRow.refund_id == PaymentChannelRefund.refund_id).where(
            RefundRow.order_id == oid))).scalars().all()
    assert len(paid) == 1


async def test_a_compensation_keeps_the_order_open_until_the_rest_is_refunded(world):
    """A refund-only lowered below what the lamp is worth: the buyer keeps it, the order stays
    open, and the rest of its paid amount is still refundable; only then does the order close."""
    oid = await world.place_order([LAMP], state="COMPLETED")
    await world.request(oid, "REFUND_ONLY", [(1, 1)])
    first = await world.opened(oid)
    await world.decide(d.AdjustRefundAmount, first, "ops", "ops-1",
                       lines=[d.LineAmount(line_no=1, refund_cents=5_000)], reason="scratched, buyer keeps it")
    await world.decide(d.ApproveTicket, first, "ops", "ops-1")
    await world.status(first, "PENDING_REFUND")
    await world.decide(d.ApproveRefund, first, "finance", "fin-1")
    await world.status(first, "COMPLETED")
    await world.request(oid, "REFUND_ONLY", [(1, 1)])  # the same lamp: 18,900 of it is left
    rest = await world.opened(oid)
    assert rest.lines[0].cap.cents == 18_900
    await world.decide(d.ApproveTicket, rest, "ops", "ops-1")
    await world.status(rest, "PENDING_REFUND")
    await world.decide(d.ApproveRefund, rest, "finance", "fin-1")
    await world.status(rest, "COMPLETED")
    await world.watcher.wait_for(oid, lambda e: e.type == "CloseOrder" and e.payload.ticket_id == rest.ticket_id)
    closes = world.messages_of(oid, "CloseOrder")  # one partition per order: an earlier one came first
    assert [m.payload.ticket_id for m in closes] == [rest.ticket_id]


async def test_a_return_withdrawn_after_inspection_sends_the_goods_back_before_closing(world, sessions):
    """The warehouse holds the buyer's mug when the buyer withdraws: no refund, and the ticket
    ends only once the WMS has shipped the mug back."""
    oid = await world.place_order([MUG], state="COMPLETED")
    await world.request(oid, "RETURN_AND_REFUND", [(1, 1)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "SF", "SF-W")
    await world.status(t, "PENDING_REFUND")  # received, inspection passed
    await world.buyer(c.WithdrawTicket(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1"))
    await world.status(t, "SENDING_BACK")
    back = await world.watcher.wait_for(oid, lambda e: e.type == "ReturnGoodsToBuyer")
    closed = await world.status(t, "CLOSED")
    assert "sent back" in closed.payload.reason
    dispatched = await world.watcher.wait_for(oid, lambda e: e.type == "AfterSalesDispatched")
    assert dispatched.payload.shipment_id == back.payload.shipment_id
    assert "ExecuteRefund" not in types_for(world, oid)


async def test_return_with_mismatch_continues_with_a_negotiated_amount(world, scenario, sessions):
    oid = await world.place_order([MUG], state="COMPLETED")
    await scenario("wms", oid, "FEWER_UNITS")
    await world.request(oid, "RETURN_AND_REFUND", [(1, 2)])
    t = await world.opened(oid)
    await world.decide(d.ApproveTicket, t, "ops", "ops-1")
    await world.ship_back(t, "SF", "SF6")
    await world.status(t, "INTERVENTION")
    await world.decide(d.ResolveIntervention, t, "ops", "ops-2", outcome=d.InterventionOutcome.NEGOTIATED,
                       lines=[d.LineAmount(line_no=1, refund_cents=3_333)], note="one mug came back")
    await world.status(t, "PENDING_REFUND")
    await world.decide(d.ApproveRefund, t, "finance", "fin-1")
    done = await world.status(t, "COMPLETED")
    assert done.payload.amount_after.cents == 3_333
    async with sessions() as session:
        refund = (await session.execute(select(RefundRow).where(RefundRow.order_id == oid))).scalar_one()
    assert refund.amount_cents == 3_333


async def test_the_buyer_is_quoted_what_the_ticket_then_refunds_and_an_impossible_quote_says_why(world):
    kettles = Line("SKU-KETTLE", 2, 6_000, 10_000, coupon_cents=1_000, points_cents=600)
    oid = await world.place_order([kettles], state="SHIPPED")
    offered = (await world.quote(oid, "RETURN_AND_REFUND", [(1, 1)], reason="NO_LONGER_WANTED")).payload
    assert offered.type == c.AfterSalesType.RETURN_AND_REFUND
    (line,) = offered.lines
    assert (line.refund.cents, line.coupon.cents, line.virtual_currency.cents, line.promotion.cents) == (
        5_000, 500, 300, 200)
    assert (offered.total.cents, offered.not_refunded.cents) == (5_000, 1_000)
    await world.request(oid, "RETURN_AND_REFUND", [(1, 1)])
    ticket = await world.opened(oid)
    assert ticket.refund_total.cents == offered.total.cents
    refused = await world.quote(oid, "RETURN_AND_REFUND", [(1, 2)])
    assert (refused.type, refused.payload.request_type, refused.payload.code) == (
        "RequestRejected", "QuoteAfterSales", "UNITS_IN_ACTIVE_TICKET")


async def test_every_worker_process_is_ready_and_its_metrics_show_the_flows(world, workers):
    """Each running process (two per worker, and the simulators) answers /healthz and /readyz on
    its own port, and /metrics shows what it consumed; the flows above went through them."""
    async with httpx.AsyncClient(timeout=10) as http:
        for name, port in workers.metrics_ports.items():
            base = f"http://127.0.0.1:{port}"
            assert (await http.get(f"{base}/healthz")).status_code == 200, name

            async def ready(base: str = base) -> bool:
                return (await http.get(f"{base}/readyz")).status_code == 200
            await eventually(ready, timeout=30)
        consumed: dict[str, float] = {}
        for name, port in workers.metrics_ports.items():
            scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            consumed[worker_of(name)] = consumed.get(worker_of(name), 0.0) + sum(
                sample.value for family in text_string_to_metric_families(scraped)
                for sample in family.samples if sample.name == "aftersales_messages_consumed_total")
    assert all(consumed[worker] > 0 for worker in ("intake", "review", "finance", "monitoring")), consumed


async def test_the_log_alone_rebuilds_what_these_flows_left_in_the_database(world, workers, stack):
    """Last in this module: once every worker has read everything and sent everything, the orders
    these flows placed, rebuilt from the Kafka log alone into an empty database by
    ``aftersales rebuild --compare`` (in a process of its own, with the workers' settings), match
    the live database table by table: tickets, audit trails, projections, ledgers, refunds,
    shipments, ERP orders, monitoring, settlement, dead letters. All but three whose flows race a
    resend against an outside system's answer: two with resends every second or half second, one
    whose answers wait unread while finance restarts (``World.timing_races``)."""
    assert await quiet(stack, [PRINCIPAL.get(w, w) for w in {worker_of(name) for name in workers.workers}], 180)

    compared = [order for order in world.orders if order not in world.timing_races]
    assert len(compared) >= 28
    assert len(world.timing_races) == 3
    async with scratch_database(stack, "rebuild") as url:
        command = [sys.executable, "-m", "services.cli", "rebuild", "--into", url, "--compare",
                   *(arg for order in compared for arg in ("--order", order))]
        done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=600,
                                       env={**os.environ, **E2E_ENV, "AFTERSALES_LOG_LEVEL": "ERROR"})
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "no differences" in done.stdout
    assert f"rebuilt {len(set(compared))} order(s)" in done.stdout
