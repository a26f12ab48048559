"""Intake's use cases on the fakes: the order projection, opening tickets, the buyer's follow-ups."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from contracts import Money
from contracts import admin as ad
from contracts import aftersales as c
from contracts import decisions as d
from contracts import notifications as n
from contracts import orders as o
from contracts import warehouse as w
from services.domain import errors
from services.domain.model import OrderState, TicketStatus

from .shop import Shop


async def test_a_request_on_a_shipped_order_opens_a_ticket_with_its_audit_entry() -> None:
    shop = Shop()
    order_id = await shop.order(quantity=2, paid=10_000)
    ticket_id = await shop.ask(order_id, quantity=1)
    ticket = shop.ticket(ticket_id)
    assert ticket.status == TicketStatus.PENDING_REVIEW
    assert ticket.lines[0].cap_cents == 5_000
    assert ticket.refund_total_cents == 5_000
    assert [t.action for tid, t in shop.db.state.audit if tid == ticket_id] == ["open"]
    assert shop.last("TicketOpened").ticket.refund_total == Money.cny(5_000)


async def test_the_same_request_twice_opens_one_ticket() -> None:
    shop = Shop()
    order_id = await shop.order()
    request = c.RequestAfterSales(request_id=uuid.uuid4(), order_id=order_id, buyer_id="buyer-1",
                                  type=c.AfterSalesType.REFUND_ONLY, lines=[c.RequestedLine(line_no=1, quantity=1)],
                                  reason_code="NO_LONGER_WANTED")
    assert await shop.deliver("intake", request, key=order_id) == "opened"
    assert await shop.deliver("intake", request, key=order_id) == "duplicate"
    assert len(shop.db.state.tickets) == 1
    assert len(shop.sent("TicketOpened")) == 1


async def test_units_in_an_active_ticket_cannot_be_asked_for_again() -> None:
    shop = Shop()
    order_id = await shop.order(quantity=1)
    await shop.ask(order_id, quantity=1)
    with pytest.raises(errors.UnitsAlreadyInActiveTicket):
        await shop.ask(order_id, quantity=1)
    assert len(shop.db.state.tickets) == 1


async def test_a_refused_request_leaves_nothing_behind() -> None:
    shop = Shop()
    order_id = await shop.order()
    before = len(shop.db.state.outbox), shop.db.commits
    with pytest.raises(errors.ReasonNotAvailable):
        await shop.ask(order_id, reason="BECAUSE")
    assert (len(shop.db.state.outbox), shop.db.commits) == before
    assert not shop.db.state.tickets


async def test_a_request_that_outruns_its_order_waits_and_opens_when_the_order_arrives() -> None:
    shop = Shop()
    order_id = "O-early-1"
    request = c.RequestAfterSales(request_id=uuid.uuid4(), order_id=order_id, buyer_id="buyer-1",
                                  type=c.AfterSalesType.REFUND_ONLY, lines=[c.RequestedLine(line_no=1, quantity=1)],
                                  reason_code="NO_LONGER_WANTED")
    assert await shop.deliver("intake", request, key=order_id, producer="buyer-frontend") == "parked"
    placed = shop.now - timedelta(hours=3)
    await shop.deliver("intake", o.OrderPlaced(
        order_id=order_id, shop_id="shop-1", buyer_id="buyer-1", placed_at=placed,
        lines=[o.OrderLine(line_no=1, sku="SKU-1", quantity=1, unit_price=Money.cny(900), paid=Money.cny(900))],
        shipping_fee=Money.cny(0)), key=order_id)
    assert not shop.sent("TicketOpened")  # an unpaid order takes no refund: still waiting
    await shop.deliver("intake", o.OrderPaid(order_id=order_id, paid_at=placed), key=order_id)
    assert shop.last("TicketOpened").request_id == request.request_id
    assert not shop.db.state.parked


async def test_a_parked_request_refused_on_replay_gets_its_rejection_and_the_order_fact_stands() -> None:
    shop = Shop()
    order_id = "O-early-2"
    request = c.RequestAfterSales(request_id=uuid.uuid4(), order_id=order_id, buyer_id="someone-else",
                                  type=c.AfterSalesType.REFUND_ONLY, lines=[c.RequestedLine(line_no=1, quantity=1)],
                                  reason_code="NO_LONGER_WANTED")
    assert await shop.deliver("intake", request, key=order_id) == "parked"
    placed = shop.now - timedelta(hours=3)
    await shop.deliver("intake", o.OrderPlaced(
        order_id=order_id, shop_id="shop-1", buyer_id="buyer-1", placed_at=placed,
        lines=[o.OrderLine(line_no=1, sku="SKU-1", quantity=1, unit_price=Money.cny(900), paid=Money.cny(900))],
        shipping_fee=Money.cny(0)), key=order_id)
    await shop.deliver("intake", o.OrderPaid(order_id=order_id, paid_at=placed), key=order_id)
    assert shop.last("RequestRejected").code == errors.NotYourOrder.code
    assert shop.db.state.orders[order_id].state == OrderState.PAID
    assert not shop.db.state.tickets
    assert not shop.db.state.parked


async def test_cancelling_an_unpaid_order_closes_it_through_the_order_system() -> None:
    shop = Shop()
    order_id = await shop.order(state="PENDING_PAYMENT")
    ticket_id = await shop.ask(order_id, "CANCEL", quantity=2)
    assert shop.ticket(ticket_id).status == TicketStatus.COMPLETED
    assert shop.last("CloseOrder").order_id == order_id
    assert shop.db.state.orders[order_id].close_requested


async def test_facts_out_of_order_are_parked_and_applied_in_order() -> None:
    shop = Shop()
    order_id = "O-shuffled"
    placed = shop.now - timedelta(days=2)
    await shop.deliver("intake", o.OrderShipped(order_id=order_id, shipped_at=placed + timedelta(hours=3)),
                       key=order_id)
    await shop.deliver("intake", o.OrderPlaced(
        order_id=order_id, shop_id="shop-1", buyer_id="buyer-1", placed_at=placed,
        lines=[o.OrderLine(line_no=1, sku="SKU-1", quantity=1, unit_price=Money.cny(900), paid=Money.cny(900))],
        shipping_fee=Money.cny(0)), key=order_id)
    assert shop.db.state.orders[order_id].state == OrderState.PENDING_PAYMENT
    await shop.deliver("intake", o.OrderPaid(order_id=order_id, paid_at=placed + timedelta(minutes=5)), key=order_id)
    assert shop.db.state.orders[order_id].state == OrderState.SHIPPED
    assert not shop.db.state.parked


async def test_only_the_buyer_who_asked_can_withdraw() -> None:
    shop = Shop()
    order_id = await shop.order()
    ticket_id = await shop.ask(order_id)
    with pytest.raises(errors.NotPermitted):
        await shop.deliver("intake", c.WithdrawTicket(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-2"),
                           key=order_id)
    await shop.deliver("intake", c.WithdrawTicket(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1"),
                       key=order_id)
    assert shop.ticket(ticket_id).status == TicketStatus.CLOSED
    assert shop.last("TicketStatusChanged").to_status == c.TicketStatus.CLOSED


async def test_a_follow_up_for_a_ticket_of_another_order_is_unknown() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order())
    other = await shop.order()
    with pytest.raises(errors.TicketUnknown):
        await shop.deliver("intake", c.WithdrawTicket(ticket_id=ticket_id, order_id=other, buyer_id="buyer-1"),
                           key=other)


async def test_the_window_is_measured_to_when_the_buyer_asked_not_to_when_intake_got_it() -> None:
    shop = Shop()
    order_id = await shop.order(state="COMPLETED")  # completed 4 hours ago: the window ends in 6 days 20 h
    asked = shop.now + timedelta(days=6, hours=19)
    shop.now = asked + timedelta(hours=2)  # the request reached intake after the window closed
    request = c.RequestAfterSales(request_id=uuid.uuid4(), order_id=order_id, buyer_id="buyer-1",
                                  type=c.AfterSalesType.RETURN_AND_REFUND, reason_code="NO_LONGER_WANTED",
                                  lines=[c.RequestedLine(line_no=1, quantity=1)], requested_at=asked)
    assert await shop.deliver("intake", request, key=order_id, producer="buyer-frontend") == "opened"
    too_late = request.model_copy(update={"request_id": uuid.uuid4(), "requested_at": None})
    with pytest.raises(errors.OutsideAfterSalesWindow):  # without it, the time it was sent counts
        await shop.deliver("intake", too_late, key=order_id, producer="buyer-frontend")


# ---------------------------------------------------------------- the reasons catalogue (admins)
def _listing(shop: Shop, ticket_type: str) -> list[tuple[str, str, bool]]:
    reasons = [r for (t, _), r in shop.db.state.reasons.items() if t.value == ticket_type]
    return [(r.code, r.label, r.visible) for r in sorted(reasons, key=lambda r: r.position)]


async def admin(shop: Shop, command: ad.ReasonCommand) -> None:
    await shop.deliver("intake", command, key=f"reasons.{command.type.value}", producer="back-office")


async def test_an_admin_adds_edits_hides_and_reorders_reasons_and_a_hidden_one_is_refused() -> None:
    shop = Shop()
    refund = c.AfterSalesType.REFUND_ONLY
    await admin(shop, ad.SaveReason(type=refund, code="LATE_DELIVERY", label="Arrived too late", requested_by="a1"))
    assert _listing(shop, "REFUND_ONLY")[-1] == ("LATE_DELIVERY", "Arrived too late", True)
    await admin(shop, ad.SaveReason(type=refund, code="NO_LONGER_WANTED", label="Changed my mind",
                                    requested_by="a1"))
    codes = [code for code, _, _ in _listing(shop, "REFUND_ONLY")]
    assert ("NO_LONGER_WANTED", "Changed my mind", True) in _listing(shop, "REFUND_ONLY")
    await admin(shop, ad.ReorderReasons(type=refund, codes=list(reversed(codes)), requested_by="a1"))
    assert [code for code, _, _ in _listing(shop, "REFUND_ONLY")] == list(reversed(codes))
    await admin(shop, ad.SetReasonVisible(type=refund, code="NO_LONGER_WANTED", visible=False, requested_by="a1"))
    with pytest.raises(errors.ReasonNotAvailable):  # the runtime turns it into a RequestRejected
        await shop.ask(await shop.order(), reason="NO_LONGER_WANTED")
    await shop.ask(await shop.order(), reason="LATE_DELIVERY")


async def test_a_change_naming_an_unknown_reason_or_a_partial_order_is_refused_and_changes_nothing() -> None:
    shop = Shop()
    refund = c.AfterSalesType.REFUND_ONLY
    before = _listing(shop, "REFUND_ONLY")
    for command in [ad.SetReasonVisible(type=refund, code="NOPE", visible=False, requested_by="a1"),
                    ad.DeleteReason(type=refund, code="NOPE", requested_by="a1"),
                    ad.ReorderReasons(type=refund, codes=[before[0][0]], requested_by="a1")]:
        with pytest.raises(errors.UnknownReason):
            await admin(shop, command)
    assert _listing(shop, "REFUND_ONLY") == before


async def test_an_exchange_to_a_variant_at_another_price_is_refused_with_its_reason() -> None:
    shop = Shop()
    order_id = await shop.order(state="COMPLETED")  # 2 units paid 10,000: listed at 5,000 each
    request = c.RequestAfterSales(
        request_id=uuid.uuid4(), order_id=order_id, buyer_id="buyer-1", type=c.AfterSalesType.EXCHANGE,
        lines=[c.RequestedLine(line_no=1, quantity=1, exchange_for=c.ExchangeVariant(
            sku="SKU-1-PRO", unit_price=Money.cny(6_500)))], reason_code="NO_LONGER_WANTED")
    with pytest.raises(errors.VariantPriceDiffers):
        await shop.deliver("intake", request, key=order_id, producer="buyer-frontend")
    assert not shop.sent("TicketOpened")


async def refused(shop: Shop, ticket_id: str, order_id: str) -> None:
    await shop.deliver("intake", c.RefuseDelivery(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1",
                                                  carrier="SF", waybill="SF-OUT-1"), key=order_id)


async def test_a_refused_parcel_is_the_return_of_a_refund_only_and_the_refund_waits_for_its_receipt() -> None:
    """拒收: the buyer asked for a refund after shipment and refused the parcel at the door; the
    carrier's return is expected as a receipt, and only its inspection lets the money go."""
    shop = Shop()
    order_id = await shop.order(state="SHIPPED")
    ticket_id = await shop.ask(order_id, "REFUND_ONLY")
    await refused(shop, ticket_id, order_id)
    ticket = shop.ticket(ticket_id)
    assert (ticket.status, ticket.delivery_refused, ticket.return_waybill) == (
        TicketStatus.AWAITING_RECEIPT, True, "SF-OUT-1")
    assert ticket.deadline_at == shop.now + shop.settings.policy_for("shop-1").receipt_window
    changed = shop.db.sent("TicketStatusChanged")[-1]
    for worker in ("warehouse", "notifications"):
        await shop.deliver(worker, changed.payload, key=changed.key, cause=changed)
    expected = shop.last("ExpectReturn")
    assert (expected.receipt_type, expected.waybill, [(ln.sku, ln.quantity) for ln in expected.lines]) == (
        w.ReceiptType.RETURN_RECEIPT, "SF-OUT-1", [("SKU-1", 1)])
    assert shop.last("BuyerNotification").template == n.NotificationTemplate.DELIVERY_REFUSED

    await shop.deliver("warehouse", w.GoodsReceived(
        receipt_id=uuid.uuid4(), ticket_id=ticket_id, order_id=order_id, receipt_type=w.ReceiptType.RETURN_RECEIPT,
        lines=[w.SkuQuantity(sku="SKU-1", quantity=1)], inspection=w.Inspection.PASSED, operator="wh-1",
        received_at=shop.now), key=order_id, producer="wms")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND  # finance approves as for a return


async def test_a_parcel_already_received_cannot_be_refused() -> None:
    shop = Shop()
    order_id = await shop.order(state="COMPLETED")
    ticket_id = await shop.ask(order_id, "REFUND_ONLY")
    with pytest.raises(errors.IllegalTransition, match="send the goods back"):
        await refused(shop, ticket_id, order_id)
    before_shipment = await shop.order(state="PAID")
    cancelled = await shop.ask(before_shipment, "REFUND_ONLY")
    with pytest.raises(errors.IllegalTransition):
        await refused(shop, cancelled, before_shipment)


async def test_a_return_asked_before_the_parcel_arrived_is_returned_by_refusing_it() -> None:
    shop = Shop()
    order_id = await shop.order(state="SHIPPED")
    ticket_id = await shop.ask(order_id, "RETURN_AND_REFUND")
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await refused(shop, ticket_id, order_id)
    assert shop.ticket(ticket_id).status == TicketStatus.AWAITING_RECEIPT
