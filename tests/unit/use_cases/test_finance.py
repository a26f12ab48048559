"""Finance's use cases on the fakes: one refund per decision, the ledger, answers, resends."""

from __future__ import annotations

import json
from functools import partial

import pytest

from contracts import Money
from contracts import decisions as d
from contracts import orders as o
from contracts.ops import CompensationAcknowledged, SettlementKind, Severity
from contracts.payments import RefundFailed, RefundSucceeded
from contracts.signing import signed
from services.common.runtime import Unprocessable, run_due
from services.domain.errors import UnitsAlreadyRefunded
from services.domain.model import TicketStatus
from services.domain.refund import RefundStatus
from services.finance.service import resend_due_refunds
from tests.unit import fakes

from .shop import CHANNEL_KEY, Shop


async def refunding(shop: Shop, *, quantity: int = 1, paid: int = 10_000, units: int = 2, shipping: int = 800,
                    state: str = "SHIPPED", coupon: int = 0) -> str:
    """A refund-only ticket approved by ops and finance; finance has seen it enter REFUNDING."""
    ticket_id = await shop.ask(await shop.order(quantity=units, paid=paid, shipping=shipping, state=state,
                                                coupon=coupon), quantity=quantity)
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    if state == "PAID":  # before shipment the money waits for the warehouse to stop the goods
        await shop.review_sees_it_opened(ticket_id)
        await shop.intercept_answer(ticket_id, intercepted=True)
    await shop.tell_finance_of_last_transition()
    return ticket_id


def refund_of(shop: Shop, ticket_id: str):  # type: ignore[no-untyped-def]
    (refund,) = [r for r in shop.db.state.refunds.values() if r.ticket_id == ticket_id]
    return refund


async def answer(shop: Shop, ticket_id: str, *, ok: bool = True, retryable: bool = False) -> None:
    refund = refund_of(shop, ticket_id)
    if ok:
        message = RefundSucceeded(refund_id=refund.refund_id, ticket_id=ticket_id, order_id=refund.order_id,
                                  amount=shop.last("ExecuteRefund").amount, channel_ref="PAY-1", settled_at=shop.now)
    else:
        message = RefundFailed(refund_id=refund.refund_id, ticket_id=ticket_id, order_id=refund.order_id,
                               code="DECLINED" if not retryable else "BUSY", message="no", retryable=retryable)
    await shop.deliver("finance", signed(message, *CHANNEL_KEY), key=refund.order_id, producer="payment-channel")


async def resend_tick(shop: Shop) -> int:
    return await run_due(partial(fakes.FakeFinanceUnitOfWork, shop.db, "finance"), resend_due_refunds(shop.deps))


async def test_entering_refunding_reserves_the_ledger_and_asks_the_channel_once() -> None:
    shop = Shop()
    ticket_id = await refunding(shop)
    (request,) = shop.sent("ExecuteRefund")
    refund = refund_of(shop, ticket_id)
    assert request.refund_id == refund.refund_id
    assert request.amount.cents == 5_000
    assert request.attempt == 1
    assert shop.db.state.ledgers[refund.order_id].lines[1].reserved_cents == 5_000
    await shop.tell_finance_of_last_transition()  # the same transition again (a redelivery)
    assert len(shop.sent("ExecuteRefund")) == 1


async def test_a_success_completes_the_ticket_and_settles_the_merchant() -> None:
    shop = Shop()
    ticket_id = await refunding(shop)
    await answer(shop, ticket_id)
    assert shop.ticket(ticket_id).status == TicketStatus.COMPLETED
    refund = refund_of(shop, ticket_id)
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.channel_ref == "PAY-1"
    settled = shop.last("SettlementAdjusted")
    assert settled.settlement_before.cents - settled.settlement_after.cents == 5_000
    assert not shop.sent("CloseOrder")  # one unit of two refunded: the order stays open
    await answer(shop, ticket_id)  # the channel says it twice
    assert len(shop.sent("SettlementAdjusted")) == 1


async def test_refunding_every_unit_closes_the_order_once() -> None:
    shop = Shop()
    ticket_id = await refunding(shop, quantity=2, units=2)
    await answer(shop, ticket_id)
    assert shop.last("CloseOrder").order_id == refund_of(shop, ticket_id).order_id
    assert len(shop.sent("CloseOrder")) == 1


async def test_a_final_refusal_fails_the_ticket_and_releases_the_reservation() -> None:
    shop = Shop()
    ticket_id = await refunding(shop)
    await answer(shop, ticket_id, ok=False)
    assert shop.ticket(ticket_id).status == TicketStatus.REFUND_FAILED
    refund = refund_of(shop, ticket_id)
    assert refund.status == RefundStatus.FAILED
    assert refund.last_error.startswith("DECLINED")
    assert shop.db.state.ledgers[refund.order_id].lines[1].reserved_cents == 0
    assert shop.last("OpsAlert").kind == "REFUND_FAILED"


async def test_finance_retrying_a_failed_refund_reuses_its_refund_id() -> None:
    shop = Shop()
    ticket_id = await refunding(shop)
    first = refund_of(shop, ticket_id).refund_id
    await answer(shop, ticket_id, ok=False)
    await shop.decide(d.RetryRefund, ticket_id, "finance", "fin-2")
    await shop.tell_finance_of_last_transition()
    requests = shop.sent("ExecuteRefund")
    assert [r.refund_id for r in requests] == [first, first]
    assert requests[-1].attempt == 1


async def test_a_retryable_refusal_is_resent_with_the_same_id_when_due() -> None:
    shop = Shop()
    ticket_id = await refunding(shop)
    await answer(shop, ticket_id, ok=False, retryable=True)
    assert shop.ticket(ticket_id).status == TicketStatus.REFUNDING
    shop.db.relay()
    shop.later(hours=1)
    assert await resend_tick(shop) == 1
    first, second = shop.sent("ExecuteRefund")
    assert second.refund_id == first.refund_id
    assert second.attempt == 2


async def test_a_request_still_in_the_outbox_is_not_counted_as_an_attempt() -> None:
    shop = Shop()
    ticket_id = await refunding(shop)  # Kafka is down: the relay never ran
    shop.later(hours=1)
    assert await resend_tick(shop) == 0
    refund = refund_of(shop, ticket_id)
    assert refund.attempts == 1
    assert refund.next_attempt_at is not None
    assert refund.next_attempt_at > shop.now


async def test_an_unanswered_refund_gives_up_after_the_last_attempt_with_an_alert() -> None:
    shop = Shop(refund_max_attempts=2)
    ticket_id = await refunding(shop)
    for _ in range(2):
        shop.db.relay()
        shop.later(hours=2)
        await resend_tick(shop)
    assert refund_of(shop, ticket_id).status == RefundStatus.FAILED
    assert shop.ticket(ticket_id).status == TicketStatus.REFUND_FAILED
    assert "REFUND_UNANSWERED" in [a.kind for a in shop.sent("OpsAlert")]


async def test_a_success_after_giving_up_still_counts_the_money_that_moved() -> None:
    shop = Shop()
    ticket_id = await refunding(shop)
    await answer(shop, ticket_id, ok=False)
    await answer(shop, ticket_id)
    refund = refund_of(shop, ticket_id)
    assert refund.status == RefundStatus.SUCCEEDED
    assert shop.ticket(ticket_id).status == TicketStatus.COMPLETED
    line = shop.db.state.ledgers[refund.order_id].lines[1]
    assert (line.reserved_cents, line.refunded_cents) == (5_000, 5_000)


async def test_a_whole_order_refunded_before_shipment_returns_the_shipping_fee() -> None:
    shop = Shop()
    ticket_id = await refunding(shop, quantity=2, units=2, state="PAID", shipping=800)
    assert shop.last("ExecuteRefund").amount.cents == 10_800
    assert refund_of(shop, ticket_id).shipping_cents == 800


async def test_a_refunded_coupon_goes_back_through_marketing_until_acknowledged() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order(quantity=2, paid=10_000, coupon=1_000), quantity=1)
    await shop.decide(d.SetRefundFlags, ticket_id, "ops", "ops-1", refund_coupon=True,
                      refund_virtual_currency=False, refund_shipping=False)
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    await answer(shop, ticket_id)
    compensation = shop.last("ReturnCompensation")
    assert compensation.coupon.cents == 500
    await shop.deliver("finance", CompensationAcknowledged(compensation_id=compensation.compensation_id,
                                                           order_id=compensation.order_id),
                       key=compensation.order_id, producer="marketing")
    assert shop.db.state.compensations[compensation.compensation_id].acknowledged_at == shop.now


async def test_a_refund_waits_until_finance_has_consumed_what_the_order_paid() -> None:
    """Finance reads the orders topic on its own; when it lags, the ticket's refund starts as soon
    as the order's payment arrives, without holding the tickets partition in the meantime."""
    shop = Shop()
    order_id = await shop.order(finance_sees_it=False)
    ticket_id = await shop.ask(order_id)
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()  # applied and committed: nothing to wait on
    assert shop.sent("ExecuteRefund") == []
    assert shop.db.state.refunds == {}
    await shop.deliver("finance", shop.placed[order_id], key=order_id, producer="order-system")
    (request,) = shop.sent("ExecuteRefund")
    assert request.amount.cents == 5_000
    assert refund_of(shop, ticket_id).ticket_id == ticket_id
    await shop.deliver("finance", shop.placed[order_id], key=order_id, producer="order-system")  # again
    assert len(shop.sent("ExecuteRefund")) == 1


async def test_finance_keeps_the_first_copy_of_an_order_payment() -> None:
    shop = Shop()
    order_id = await shop.order(paid=10_000)
    forged = shop.placed[order_id].model_copy(update={"shipping_fee": Money.cny(99_999)})
    await shop.deliver("finance", forged, key=order_id, producer="order-system")
    assert shop.db.state.paid_orders[order_id].shipping_fee_cents == 800


async def compensated(shop: Shop, order_id: str, cents: int) -> str:
    """A refund-only that ops lowered below what the unit is worth: the buyer keeps the item."""
    ticket_id = await shop.ask(order_id, quantity=1)
    await shop.decide(d.AdjustRefundAmount, ticket_id, "ops", "ops-1",
                      lines=[d.LineAmount(line_no=1, refund_cents=cents)], reason="scratch, buyer keeps it")
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    await answer(shop, ticket_id)
    assert shop.ticket(ticket_id).status == TicketStatus.COMPLETED
    return ticket_id


async def test_each_settled_refund_takes_back_its_share_of_subsidy_and_gives_back_its_share_of_fee() -> None:
    """Paid 24,700 (23,900 + 800 shipping), subsidy 2,470, fee 1,235: settled 25,935. A 5,000
    compensation keeps 19,700/24,700: subsidy 1,970 (500 back), fee 985 (250 back). Refunding the
    rest of the unit, 18,900, keeps the 800 shipping: subsidy 80 (1,890 more), fee 40 (945 more);
    what is left settles at 800 + 80 - 40 = 840, to the cent."""
    shop = Shop()
    order_id = await shop.order(quantity=1, paid=23_900, subsidy=2_470, fee=1_235)
    await compensated(shop, order_id, 5_000)
    first = shop.last("SettlementAdjusted")
    assert (first.kind, first.refund.cents, first.subsidy_taken_back.cents, first.fee_given_back.cents) == (
        SettlementKind.COMPENSATION, 5_000, 500, 250)
    assert (first.settlement_before.cents, first.settlement_after.cents) == (25_935, 20_685)

    rest = await shop.ask(order_id, quantity=1)
    await shop.decide(d.ApproveTicket, rest, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, rest, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    await answer(shop, rest)
    second = shop.last("SettlementAdjusted")
    assert (second.kind, second.refund.cents, second.subsidy_taken_back.cents, second.fee_given_back.cents) == (
        SettlementKind.REFUND, 18_900, 1_890, 945)
    assert (second.settlement_before.cents, second.settlement_after.cents) == (20_685, 840)


async def test_a_compensation_leaves_the_order_open_and_the_rest_of_the_unit_refundable() -> None:
    shop = Shop()
    order_id = await shop.order(quantity=1, paid=23_900)
    await compensated(shop, order_id, 5_000)
    assert not shop.sent("CloseOrder")  # the unit is with the buyer, 18,900 of it unrefunded
    line = shop.db.state.ledgers[order_id].lines[1]
    assert (line.refunded_cents, line.refunded_units) == (5_000, 0)

    later = await shop.ask(order_id, quantity=1)  # the same unit again: worth what is left of it
    assert shop.ticket(later).lines[0].cap_cents == 18_900
    await shop.decide(d.ApproveTicket, later, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, later, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    assert shop.last("ExecuteRefund").amount.cents == 18_900
    await answer(shop, later)
    assert shop.last("CloseOrder").order_id == order_id  # now every cent of it came back
    assert len(shop.sent("CloseOrder")) == 1


async def test_a_compensated_unit_may_still_be_repaired() -> None:
    shop = Shop()
    order_id = await shop.order(quantity=1, paid=23_900, state="COMPLETED")
    await compensated(shop, order_id, 5_000)
    repair = await shop.ask(order_id, "REPAIR", reason="QUALITY_PROBLEM", evidence=("photo-1",))
    assert shop.ticket(repair).lines[0].positions == (0,)


async def test_a_fully_refunded_unit_cannot_be_asked_for_again() -> None:
    shop = Shop()
    order_id = await shop.order(quantity=1, paid=23_900)
    await compensated(shop, order_id, 23_900)  # "lowered" to the full amount: a full refund
    assert shop.last("CloseOrder").order_id == order_id
    with pytest.raises(UnitsAlreadyRefunded):
        await shop.ask(order_id, quantity=1)


async def test_a_unit_paid_nothing_completes_closes_the_order_and_returns_its_coupon() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order(quantity=1, paid=0, shipping=0, coupon=2_000), quantity=1)
    await shop.decide(d.SetRefundFlags, ticket_id, "ops", "ops-1", refund_coupon=True,
                      refund_virtual_currency=False, refund_shipping=False)
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    assert not shop.sent("ExecuteRefund")  # nothing to pay: the channel is not asked
    assert shop.ticket(ticket_id).status == TicketStatus.COMPLETED
    assert shop.last("CloseOrder").order_id == shop.ticket(ticket_id).order_id
    assert shop.last("ReturnCompensation").coupon.cents == 2_000
    assert not shop.sent("SettlementAdjusted")  # no money moved


async def test_shipping_counts_towards_the_manager_threshold() -> None:
    shop = Shop(policy={"large_amount_threshold_cents": 10_000})
    ticket_id = await refunding(shop, quantity=1, units=1, paid=9_900, shipping=800, state="PAID")
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_MANAGER  # 9,900 + 800 shipping
    assert not shop.sent("ExecuteRefund")
    assert shop.db.state.ledgers[shop.ticket(ticket_id).order_id].leaving_cents == 0  # nothing reserved
    await shop.decide(d.ApproveLargeRefund, ticket_id, "manager", "mgr-1")
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    assert shop.last("ExecuteRefund").amount.cents == 10_700


async def test_splitting_a_large_refund_into_tickets_still_needs_the_manager() -> None:
    shop = Shop(policy={"large_amount_threshold_cents": 10_000})
    order_id = await shop.order(quantity=2, paid=12_000)
    first = await shop.ask(order_id, quantity=1)
    await shop.decide(d.ApproveTicket, first, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, first, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    assert shop.last("ExecuteRefund").amount.cents == 6_000  # one half alone is below the threshold
    second = await shop.ask(order_id, quantity=1)
    await shop.decide(d.ApproveTicket, second, "ops", "ops-1")
    assert shop.ticket(second).status == TicketStatus.PENDING_REFUND  # review sees one ticket only
    await shop.decide(d.ApproveRefund, second, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    assert shop.ticket(second).status == TicketStatus.PENDING_MANAGER  # finance sees 12,000 leave the order
    assert len(shop.sent("ExecuteRefund")) == 1


async def test_coupons_earlier_tickets_gave_back_count_towards_the_manager_threshold() -> None:
    shop = Shop(policy={"large_amount_threshold_cents": 12_000})
    order_id = await shop.order(quantity=2, paid=10_000, coupon=4_000)
    first = await shop.ask(order_id, quantity=1)
    await shop.decide(d.SetRefundFlags, first, "ops", "ops-1", refund_coupon=True)
    await shop.decide(d.ApproveTicket, first, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, first, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    await answer(shop, first)  # 5,000 cash and a 2,000 coupon left the shop
    second = await shop.ask(order_id, quantity=1)
    await shop.decide(d.ApproveTicket, second, "ops", "ops-1")
    await shop.decide(d.ApproveRefund, second, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    # 5,000 + 5,000 cash is below 12,000; with the first ticket's coupon it is 12,000
    assert shop.ticket(second).status == TicketStatus.PENDING_MANAGER
    assert len(shop.sent("ExecuteRefund")) == 1


async def test_automatic_finance_approval_counts_the_whole_order() -> None:
    shop = Shop(policy={"finance_auto_approve_below_cents": 10_000})
    order_id = await shop.order(quantity=2, paid=12_000)
    first = await shop.ask(order_id, quantity=1)
    await shop.decide(d.ApproveTicket, first, "ops", "ops-1")
    await shop.tell_finance_of_last_transition()
    assert shop.last("ExecuteRefund").amount.cents == 6_000  # approved by policy
    second = await shop.ask(order_id, quantity=1)
    await shop.decide(d.ApproveTicket, second, "ops", "ops-1")
    await shop.tell_finance_of_last_transition()
    assert shop.ticket(second).status == TicketStatus.PENDING_REFUND  # a person in finance approves
    await shop.decide(d.ApproveRefund, second, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    assert len(shop.sent("ExecuteRefund")) == 2


async def test_every_amount_keeps_the_orders_currency() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order(quantity=1, paid=1_999, currency="USD"), quantity=1)
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    assert shop.last("TicketStatusChanged").ticket.refund_total == Money(cents=1_999, currency="USD")
    await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
    await shop.tell_finance_of_last_transition()
    assert shop.last("ExecuteRefund").amount == Money(cents=1_999, currency="USD")
    await answer(shop, ticket_id)
    settled = shop.last("SettlementAdjusted")
    assert {settled.refund.currency, settled.settlement_before.currency, settled.settlement_after.currency} == {"USD"}


async def test_an_order_mixing_currencies_is_refused_by_intake_and_finance() -> None:
    shop = Shop()
    placed = o.OrderPlaced(
        order_id="O-MIXED", shop_id="shop-1", buyer_id="buyer-1", placed_at=shop.now,
        lines=[o.OrderLine(line_no=1, sku="SKU-1", quantity=1, unit_price=Money(cents=1_999, currency="USD"),
                           paid=Money(cents=1_999, currency="USD"))],
        shipping_fee=Money(cents=800, currency="CNY"))
    for worker in ("intake", "finance"):
        with pytest.raises(Unprocessable) as refused:
            await shop.deliver(worker, placed, key="O-MIXED", producer="order-system")
        assert refused.value.code == "MIXED_CURRENCY"
    assert "O-MIXED" not in shop.db.state.orders


async def test_a_payment_that_reaches_a_closed_order_is_refunded_in_full() -> None:
    shop = Shop(policy={"large_amount_threshold_cents": 5_000})  # no manager for money never owed
    order_id = await shop.order(state="PENDING_PAYMENT", quantity=2, paid=10_000, shipping=800)
    await shop.deliver("intake", o.OrderClosed(order_id=order_id, closed_at=shop.now, reason="payment timeout"),
                       key=order_id, producer="order-system")
    await shop.deliver("intake", o.OrderPaid(order_id=order_id, paid_at=shop.now), key=order_id,
                       producer="order-system")
    opened = shop.last("TicketOpened").ticket
    assert (opened.reason_code, str(opened.status), opened.refund_total.cents) == ("LATE_PAYMENT", "REFUNDING", 10_000)
    assert shop.last("OpsAlert").kind == "LATE_PAYMENT"
    await shop.tell_finance_of_last_transition()
    assert shop.last("ExecuteRefund").amount.cents == 10_800  # shipping too: the whole payment
    await answer(shop, opened.ticket_id)
    assert shop.ticket(opened.ticket_id).status == TicketStatus.COMPLETED
    await shop.deliver("intake", o.OrderPaid(order_id=order_id, paid_at=shop.now), key=order_id,
                       producer="order-system")  # the same payment told again: no second ticket
    assert len(shop.sent("TicketOpened")) == 1


# ---------------------------------------------------------------- signed channel answers
async def test_a_result_unsigned_signed_with_an_unknown_key_or_altered_is_dead_lettered_with_an_alert() -> None:
    shop = Shop()
    ticket_id = await refunding(shop)
    refund = refund_of(shop, ticket_id)
    paid = RefundSucceeded(refund_id=refund.refund_id, ticket_id=ticket_id, order_id=refund.order_id,
                           amount=shop.last("ExecuteRefund").amount, channel_ref="PAY-1", settled_at=shop.now)
    forged = [paid, signed(paid, "someone-elses-key", "guessed"), signed(paid, CHANNEL_KEY[0], "guessed"),
              signed(paid, *CHANNEL_KEY).model_copy(update={"channel_ref": "PAY-2"})]
    for result in forged:
        with pytest.raises(Unprocessable) as refused:
            await shop.deliver("finance", result, key=refund.order_id, producer="payment-channel")
        assert (refused.value.code, refused.value.alert) == ("SIGNATURE_INVALID", Severity.CRITICAL)
    assert shop.ticket(ticket_id).status == TicketStatus.REFUNDING
    await shop.deliver("finance", signed(paid, *CHANNEL_KEY), key=refund.order_id, producer="payment-channel")
    assert shop.ticket(ticket_id).status == TicketStatus.COMPLETED


async def test_a_key_rotates_by_id_results_signed_by_the_old_and_the_new_key_both_verify() -> None:
    old, new = ("2026-11", "the november key"), ("2026-12", "the december key")
    shop = Shop(payment_signing_keys=json.dumps(dict([old, new])))
    first, second = await refunding(shop), await refunding(shop)
    for ticket_id, key in [(first, old), (second, new)]:
        refund = refund_of(shop, ticket_id)
        await shop.deliver("finance", signed(RefundSucceeded(
            refund_id=refund.refund_id, ticket_id=ticket_id, order_id=refund.order_id,
            amount=Money.cny(refund.amount_cents), channel_ref="PAY-1", settled_at=shop.now), *key),
            key=refund.order_id, producer="payment-channel")
        assert shop.ticket(ticket_id).status == TicketStatus.COMPLETED


async def test_the_virtual_currency_paid_with_goes_back_with_the_refund_unless_the_shop_says_otherwise() -> None:
    """Seed 004: the gold coins used to pay are returned with the paid amount (the default); seed
    003: a shop may return them only when agreed, ops then giving them back per ticket."""
    shop = Shop(shop_policies={"shop-strict": {"return_virtual_currency": False}})
    for shop_id in ("shop-1", "shop-strict"):
        ticket_id = await shop.ask(await shop.order(quantity=2, paid=10_000, points=600, shop_id=shop_id))
        assert shop.ticket(ticket_id).refund_virtual_currency is (shop_id == "shop-1")
        assert shop.last("TicketOpened").ticket.refund_virtual_currency is (shop_id == "shop-1")
        await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
        await shop.decide(d.ApproveRefund, ticket_id, "finance", "fin-1")
        await shop.tell_finance_of_last_transition()
        await answer(shop, ticket_id)
    (given_back,) = shop.sent("ReturnCompensation")  # the strict shop's buyer got the cash only
    assert (given_back.virtual_currency.cents, given_back.coupon.cents) == (300, 0)
    assert shop.ticket(given_back.ticket_id).shop_id == "shop-1"
