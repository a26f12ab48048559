"""Review's use cases on the fakes: automatic rules on new tickets, staff decisions."""

from __future__ import annotations

import pytest

from contracts import aftersales as c
from contracts import decisions as d
from contracts import notifications as n
from contracts import warehouse as w
from contracts.warehouse import InterceptOutcome, InterceptResult
from services.domain import errors
from services.domain.model import InterceptState, TicketStatus
from services.scheduler.service import ticket_deadlines

from .shop import Shop


async def _opened(shop: Shop, ticket_id: str) -> None:
    """Review consumes the TicketOpened intake just announced."""
    opened = shop.db.sent("TicketOpened")[-1]
    await shop.deliver("review", opened.payload, key=opened.key, cause=opened)


async def test_a_refund_asked_within_30_minutes_of_payment_is_intercepted_and_approved_at_once() -> None:
    shop = Shop(policy={"finance_auto_approve_refund_only": True})
    order_id = await shop.order(state="PAID")
    shop.now = shop.db.state.orders[order_id].paid_at  # type: ignore[assignment]
    ticket_id = await shop.ask(order_id)
    await _opened(shop, ticket_id)
    assert shop.last("InterceptShipment").ticket_id == ticket_id
    ticket = shop.ticket(ticket_id)
    assert ticket.intercept == InterceptState.REQUESTED
    assert ticket.status == TicketStatus.PENDING_REFUND  # approved, and the money waits for the goods
    assert ticket.ops_reviewer_id == "system"
    assert ticket.deadline_kind == "intercept"
    await shop.intercept_answer(ticket_id, intercepted=True)
    assert shop.ticket(ticket_id).status == TicketStatus.REFUNDING
    assert shop.last("TicketStatusChanged").to_status == "REFUNDING"


async def instant(shop: Shop) -> str:
    """A refund-only asked within 30 minutes of payment: approved at once, the intercept asked."""
    order_id = await shop.order(state="PAID")
    shop.now = shop.db.state.orders[order_id].paid_at  # type: ignore[assignment]
    ticket_id = await shop.ask(order_id)
    await shop.review_sees_it_opened(ticket_id)
    return ticket_id


async def test_goods_already_dispatched_send_an_approved_refund_back_to_review_without_money() -> None:
    shop = Shop(policy={"finance_auto_approve_refund_only": True})
    ticket_id = await instant(shop)
    await shop.intercept_answer(ticket_id, intercepted=False)
    ticket = shop.ticket(ticket_id)
    assert ticket.status == TicketStatus.PENDING_REVIEW
    assert (ticket.finance_reviewer_id, ticket.deadline_kind) == (None, "review_sla")
    assert shop.last("OpsAlert").kind == "INTERCEPT_FAILED"
    assert "REFUNDING" not in [str(e.to_status) for e in shop.sent("TicketStatusChanged")]


async def test_finance_approval_before_the_intercept_answer_waits_for_it() -> None:
    shop = Shop()
    ticket_id = await instant(shop)
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND  # approved, held
    with pytest.raises(errors.IllegalTransition):
        await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-2")
    await shop.intercept_answer(ticket_id, intercepted=True)
    assert shop.ticket(ticket_id).status == TicketStatus.REFUNDING


async def test_no_intercept_answer_in_time_sends_a_held_refund_back_to_review() -> None:
    shop = Shop(policy={"finance_auto_approve_refund_only": True})
    ticket_id = await instant(shop)
    shop.later(hours=3)
    await shop.tick("scheduler", ticket_deadlines(shop.deps))
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REVIEW
    await shop.intercept_answer(ticket_id, intercepted=True)  # the late answer is still recorded
    assert shop.ticket(ticket_id).intercept == InterceptState.INTERCEPTED


async def test_ops_quicker_than_the_intercept_request_still_waits_for_the_goods() -> None:
    shop = Shop(policy={"finance_auto_approve_refund_only": True})
    order_id = await shop.order(state="PAID")
    ticket_id = await shop.ask(order_id)
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")  # before review saw TicketOpened
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND
    await shop.review_sees_it_opened(ticket_id)
    assert shop.last("InterceptShipment").ticket_id == ticket_id
    await shop.intercept_answer(ticket_id, intercepted=True)
    assert shop.ticket(ticket_id).status == TicketStatus.REFUNDING


async def test_an_intercept_asks_for_the_tickets_units_only() -> None:
    shop = Shop()
    order_id = await shop.order(state="PAID", quantity=3)
    ticket_id = await shop.ask(order_id, quantity=1)
    await shop.review_sees_it_opened(ticket_id)
    assert [(ln.sku, ln.quantity) for ln in shop.last("InterceptShipment").lines] == [("SKU-1", 1)]


async def withdrawn(shop: Shop, ticket_id: str) -> None:
    order_id = shop.ticket(ticket_id).order_id
    await shop.deliver("intake", c.WithdrawTicket(ticket_id=ticket_id, order_id=order_id, buyer_id="buyer-1"),
                       key=order_id, producer="buyer-frontend")
    closed = shop.db.sent("TicketStatusChanged")[-1]
    await shop.deliver("review", closed.payload, key=closed.key, cause=closed)  # review sees it close


async def test_a_withdrawn_ticket_releases_its_intercept() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order(state="PAID"))
    await shop.review_sees_it_opened(ticket_id)
    await shop.intercept_answer(ticket_id, intercepted=True)  # held, waiting for ops
    await withdrawn(shop, ticket_id)
    assert shop.last("ReleaseIntercept").ticket_id == ticket_id
    assert shop.ticket(ticket_id).intercept == InterceptState.RELEASED


async def test_an_intercept_that_lands_after_the_buyer_withdrew_is_released() -> None:
    shop = Shop()
    order_id = await shop.order(state="PAID")
    ticket_id = await shop.ask(order_id)
    await shop.review_sees_it_opened(ticket_id)
    await withdrawn(shop, ticket_id)  # the intercept was only asked for: released at once
    assert len(shop.sent("ReleaseIntercept")) == 1
    await shop.intercept_answer(ticket_id, intercepted=True)  # the WMS held it anyway, late
    assert len(shop.sent("ReleaseIntercept")) == 2  # so it is let go again
    assert shop.ticket(ticket_id).intercept == InterceptState.RELEASED


async def test_a_refunded_ticket_keeps_its_goods_stopped() -> None:
    shop = Shop(policy={"finance_auto_approve_refund_only": True})
    ticket_id = await instant(shop)
    await shop.intercept_answer(ticket_id, intercepted=True)
    shop.ticket(ticket_id).refund_succeeded(shop.now, shop.deps.settings.policy_for("shop-1"), 5_000)
    assert not shop.ticket(ticket_id).release_intercept(shop.now)


async def test_a_refund_asked_later_before_shipment_waits_for_ops_but_is_intercepted() -> None:
    shop = Shop()
    order_id = await shop.order(state="PAID")
    ticket_id = await shop.ask(order_id)
    await _opened(shop, ticket_id)
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REVIEW
    await shop.deliver("review", InterceptResult(ticket_id=ticket_id, order_id=shop.ticket(ticket_id).order_id,
                                                 outcome=InterceptOutcome.INTERCEPTED, decided_at=shop.now),
                       key=shop.ticket(ticket_id).order_id)
    assert shop.ticket(ticket_id).intercept == InterceptState.INTERCEPTED


async def test_ops_approval_then_finance_approval_starts_the_refund() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order())
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    assert shop.ticket(ticket_id).status == TicketStatus.REFUNDING
    moves = [(str(e.from_status), str(e.to_status), e.actor.id) for e in shop.sent("TicketStatusChanged")]
    assert moves == [("PENDING_REVIEW", "PENDING_REFUND", "ops-1"), ("PENDING_REFUND", "REFUNDING", "fin-1")]


async def test_the_ops_reviewer_cannot_also_approve_the_refund() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order())
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "same-person")
    with pytest.raises(errors.MakerCheckerViolation):
        await shop.decide(d.ApproveRefund, ticket_id, "finance", "same-person")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND


async def test_a_large_refund_needs_a_manager_first() -> None:
    shop = Shop(policy={"large_amount_threshold_cents": 5_000})
    ticket_id = await shop.ask(await shop.order(), quantity=1)
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_MANAGER
    await shop.decide(d.ApproveLargeRefund, ticket_id, "manager", "mgr-1")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REFUND


async def test_ops_may_lower_the_refund_but_never_raise_it_above_the_cap() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order(quantity=2, paid=10_000), quantity=1)
    with pytest.raises(errors.DomainError):
        await shop.decide(d.AdjustRefundAmount, ticket_id, "ops", "ops-1",
                          lines=[d.LineAmount(line_no=1, refund_cents=5_001)], reason="goodwill")
    await shop.decide(d.AdjustRefundAmount, ticket_id, "ops", "ops-1",
                      lines=[d.LineAmount(line_no=1, refund_cents=4_000)], reason="scratched box")
    assert shop.ticket(ticket_id).refund_total_cents == 4_000
    assert shop.last("TicketStatusChanged").amount_after.cents == 4_000


async def test_finance_sends_a_ticket_back_to_ops_with_a_reason() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order())
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    with pytest.raises(errors.ReasonRequired):
        await shop.decide(d.SendBackRefund, ticket_id, "finance", "fin-1", reason=" ")
    await shop.decide(d.SendBackRefund, ticket_id, "finance", "fin-1", reason="amount looks wrong")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REVIEW


async def test_a_cancel_ticket_takes_no_decision() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order(state="PENDING_PAYMENT"), "CANCEL", quantity=2)
    with pytest.raises(errors.IllegalTransition):
        await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")


async def test_a_decision_for_an_unknown_ticket_is_refused_by_name() -> None:
    shop = Shop()
    order_id = await shop.order()
    with pytest.raises(errors.TicketUnknown):
        await shop.deliver("review", d.ApproveTicket(ticket_id="T-nope", order_id=order_id,
                                                     actor=c.Actor(role=c.Role.OPS, id="ops-1")), key=order_id)


async def test_a_return_is_approved_with_the_shops_return_desk_or_the_address_ops_give() -> None:
    shop = Shop()
    order_id = await shop.order(state="COMPLETED")
    ticket_id = await shop.ask(order_id, "RETURN_AND_REFUND")
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    assert shop.ticket(ticket_id).status == TicketStatus.AWAITING_RETURN
    assert shop.ticket(ticket_id).return_address["recipient"] == "Returns desk"  # the shop's ("*") desk
    assert shop.last("TicketStatusChanged").ticket.return_address.address == "Returns warehouse, 1 Test Road"

    other = await shop.ask(await shop.order(state="COMPLETED"), "EXCHANGE", reason="WRONG_SPEC_CHOSEN")
    given = c.ReturnAddress(recipient="Li Lei", phone="138-0000-0000", address="Hall B, 9 Port Road",
                            instructions="Keep the seal intact")
    await shop.decide(d.ApproveTicket, other, "ops", "ops-1", return_address=given)
    assert shop.ticket(other).return_address == given.model_dump()


async def test_a_return_with_no_address_given_or_configured_is_refused_and_stays_in_review() -> None:
    shop = Shop(return_addresses="{}")
    order_id = await shop.order(state="COMPLETED")
    ticket_id = await shop.ask(order_id, "RETURN_AND_REFUND")
    with pytest.raises(errors.ReturnAddressMissing):
        await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REVIEW
    refund_only = await shop.ask(await shop.order(), "REFUND_ONLY")
    await shop.decide(d.ApproveTicket, refund_only, "ops", "ops-1")  # no goods come back: no address needed
    assert shop.ticket(refund_only).status != TicketStatus.PENDING_REVIEW


async def test_missing_units_are_sent_again_instead_of_refunded_and_the_buyer_confirms_them() -> None:
    """补发: ops answers a refund-only for a missing unit by reissuing it; the warehouse ships the
    same sku as a reissue, finance moves no money, and the buyer is told the unit comes again."""
    shop = Shop()
    order_id = await shop.order(state="SHIPPED")
    ticket_id = await shop.ask(order_id, "REFUND_ONLY", reason="MISSING_ITEM", evidence=("photo-1",))
    await shop.decide(d.ReissueMissingUnits, ticket_id, "ops", "ops-1", note="the second mug was not in the box")
    ticket = shop.ticket(ticket_id)
    assert (ticket.status, ticket.reissue, ticket.refund_total_cents) == (TicketStatus.AWAITING_RESHIPMENT, True, 0)
    last = [t for tid, t in shop.db.state.audit if tid == ticket_id][-1]
    assert (last.action, last.amount_before_cents, last.amount_after_cents) == ("reissue", 5_000, 0)

    changed = shop.db.sent("TicketStatusChanged")[-1]
    for worker in ("warehouse", "finance", "notifications"):
        await shop.deliver(worker, changed.payload, key=changed.key, cause=changed)
    ship = shop.last("ShipAfterSales")
    assert (ship.shipment_type, [(ln.sku, ln.quantity) for ln in ship.lines]) == (
        w.ShipmentType.REISSUE_SHIPMENT, [("SKU-1", 1)])
    assert not shop.sent("ExecuteRefund")
    assert shop.last("BuyerNotification").template == n.NotificationTemplate.REISSUE_APPROVED

    await shop.deliver("warehouse", w.AfterSalesDispatched(
        shipment_id=ship.shipment_id, ticket_id=ticket_id, order_id=order_id, carrier="SF", waybill="SF-AGAIN",
        operator="wh-1", dispatched_at=shop.now), key=order_id, producer="wms")
    await shop.deliver("intake", c.ConfirmExchangeReceived(ticket_id=ticket_id, order_id=order_id,
                                                           buyer_id="buyer-1"), key=order_id)
    assert shop.ticket(ticket_id).status == TicketStatus.COMPLETED
    done = shop.db.sent("TicketStatusChanged")[-1]
    await shop.deliver("notifications", done.payload, key=done.key, cause=done)
    assert shop.last("BuyerNotification").template == n.NotificationTemplate.COMPLETED  # nothing was refunded


async def test_only_a_shipped_refund_only_can_be_reissued_and_only_by_ops() -> None:
    shop = Shop()
    before_shipment = await shop.ask(await shop.order(state="PAID"), "REFUND_ONLY")
    with pytest.raises(errors.IllegalTransition):
        await shop.decide(d.ReissueMissingUnits, before_shipment, "ops", "ops-1", note="nothing shipped yet")
    shipped = await shop.ask(await shop.order(state="SHIPPED"), "REFUND_ONLY")
    with pytest.raises(errors.NotPermitted):
        await shop.decide(d.ReissueMissingUnits, shipped, "finance", "fin-1", note="missing")
    assert shop.ticket(shipped).status == TicketStatus.PENDING_REVIEW
