"""The refund, ERP order and shipment aggregates: their states, the moves each state allows, and
(stateful) that whatever the payment channel says, in whatever order, a refund pays at most once
and the ledger's reservations match the refund's state."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from services.domain.erp_order import ErpOrder, ErpOrderKind, ErpOrderStatus, SkuQuantity
from services.domain.errors import LifecycleViolation
from services.domain.refund import Refund, RefundStatus
from services.domain.refunds import LedgerLine, RefundLedger
from services.domain.shipment import Shipment, ShipmentKind, ShipmentStatus, sku_totals

from .builders import T0


def backoff(attempt: int) -> timedelta:
    return timedelta(minutes=attempt)


def new_refund(cents: int = 5_000, shipping: int = 0) -> Refund:
    return Refund.new("T1", "O1", {1: (cents, 1)}, shipping)


def test_a_refund_is_asked_for_counts_attempts_and_waits_with_backoff() -> None:
    refund = new_refund(shipping=800)
    assert refund.status == RefundStatus.PENDING
    assert refund.amount_cents == 5_800
    refund.sent(T0, backoff)
    refund.sent(T0, backoff)
    assert refund.attempts == 2
    assert refund.next_attempt_at == T0 + timedelta(minutes=2)
    assert not refund.is_due(T0)
    assert refund.is_due(T0 + timedelta(minutes=2))


def test_a_retryable_refusal_waits_for_the_next_attempt_and_a_final_one_asks_to_give_up() -> None:
    refund = new_refund()
    refund.sent(T0, backoff)
    assert not refund.refused("BUSY: later", retryable=True, max_attempts=3, now=T0, backoff=backoff)
    assert refund.status == RefundStatus.PENDING
    assert refund.last_error == "BUSY: later"
    assert refund.refused("DECLINED: no", retryable=False, max_attempts=3, now=T0, backoff=backoff)
    refund.give_up()
    assert refund.status == RefundStatus.FAILED
    assert refund.last_error == "DECLINED: no"


def test_a_retryable_refusal_on_the_last_attempt_asks_to_give_up() -> None:
    refund = new_refund()
    refund.sent(T0, backoff)
    assert refund.refused("BUSY", retryable=True, max_attempts=1, now=T0, backoff=backoff)


def test_a_success_is_recorded_once_and_says_whether_it_came_late() -> None:
    on_time, late = new_refund(), new_refund()
    assert on_time.succeed("PAY-1", T0) is False
    late.give_up()
    assert late.succeed("PAY-2", T0) is True
    assert late.status == RefundStatus.SUCCEEDED
    with pytest.raises(LifecycleViolation):
        on_time.succeed("PAY-1", T0)


def test_only_a_failed_refund_starts_again_and_it_keeps_its_id() -> None:
    refund = new_refund()
    with pytest.raises(LifecycleViolation):
        refund.restart({1: (4_000, 1)}, 0)
    refund.sent(T0, backoff)
    refund.give_up()
    refund_id = refund.refund_id
    refund.restart({1: (4_000, 1)}, 0)
    assert (refund.refund_id, refund.status, refund.attempts, refund.amount_cents) == (
        refund_id, RefundStatus.PENDING, 0, 4_000)


def test_only_a_zero_refund_completes_without_the_channel() -> None:
    with pytest.raises(LifecycleViolation):
        new_refund(cents=1).complete_without_payment(T0)
    nothing = new_refund(cents=0)
    nothing.complete_without_payment(T0)
    assert nothing.status == RefundStatus.SUCCEEDED


def test_a_settled_refund_takes_no_more_moves() -> None:
    refund = new_refund()
    refund.succeed("PAY-1", T0)
    for move in (lambda: refund.sent(T0, backoff), refund.give_up, lambda: refund.postpone(T0, backoff),
                 lambda: refund.refused("x", retryable=True, max_attempts=5, now=T0, backoff=backoff)):
        with pytest.raises(LifecycleViolation):
            move()
    assert refund.status == RefundStatus.SUCCEEDED


class RefundAgainstTheLedger(RuleBasedStateMachine):
    """Finance's moves on one refund, driven in any order by what the channel and the clock do,
    as ``finance.service`` makes them: the money is reserved while PENDING, confirmed once on
    SUCCEEDED, released on FAILED (and reserved again on a late success)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = RefundLedger({1: LedgerLine(10_000, 2)}, 800)
        self.refund = Refund.new("T1", "O1", {1: (5_000, 1)}, 0)
        self.ledger.reserve(self.refund.amounts)
        self.refund.sent(T0, backoff)
        self.confirmed = 0

    @rule()
    def channel_pays(self) -> None:
        if self.refund.status == RefundStatus.SUCCEEDED:
            return  # finance drops a repeated success
        if self.refund.succeed("PAY", T0):
            self.ledger.reserve(self.refund.amounts)
        self.ledger.confirm(self.refund.amounts)
        self.confirmed += 1

    @rule(retryable=st.booleans())
    def channel_refuses(self, retryable: bool) -> None:
        if self.refund.status != RefundStatus.PENDING:
            return  # finance ignores answers to a refund that is not waiting
        if self.refund.refused("X", retryable=retryable, max_attempts=3, now=T0, backoff=backoff):
            self.give_up()

    @precondition(lambda self: self.refund.status == RefundStatus.PENDING)
    @rule()
    def no_answer_in_time(self) -> None:
        if self.refund.exhausted(3):
            self.give_up()
        else:
            self.refund.sent(T0, backoff)

    @precondition(lambda self: self.refund.status == RefundStatus.FAILED)
    @rule()
    def finance_retries(self) -> None:
        self.ledger.reserve(self.refund.amounts)
        self.refund.restart(self.refund.amounts, 0)
        self.refund.sent(T0, backoff)

    def give_up(self) -> None:
        self.refund.give_up()
        self.ledger.release(self.refund.amounts)

    @invariant()
    def money_moves_at_most_once(self) -> None:
        line = self.ledger.lines[1]
        assert self.confirmed <= 1
        assert line.refunded_cents == 5_000 * self.confirmed
        assert line.reserved_cents == (0 if self.refund.status == RefundStatus.FAILED else 5_000)
        assert line.reserved_cents <= line.paid_cents

    @invariant()
    def attempts_stay_within_the_limit(self) -> None:
        assert self.refund.attempts <= 3


TestRefundAgainstTheLedger = RefundAgainstTheLedger.TestCase
TestRefundAgainstTheLedger.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)


def new_erp_order() -> ErpOrder:
    return ErpOrder.first_sent(shop_id="S1", ticket_id="T1", ticket_no="AS1", order_id="O1",
                               kind=ErpOrderKind.RETURN_RECEIPT, lines=(SkuQuantity("SKU-A", 1),), now=T0,
                               backoff=backoff)


def test_an_erp_order_is_resent_until_acknowledged_and_a_late_ack_changes_nothing() -> None:
    order = new_erp_order()
    assert order.status == ErpOrderStatus.SENT
    assert order.attempts == 1
    order.resent(T0, backoff)
    assert order.acknowledge("ERP-1", T0) is True
    assert order.acknowledge("ERP-2", T0) is False
    assert order.erp_ref == "ERP-1"
    order.refused("too late", T0, backoff)
    assert order.status == ErpOrderStatus.ACKNOWLEDGED
    assert order.last_error == ""
    with pytest.raises(LifecycleViolation):
        order.resent(T0, backoff)


def test_a_refused_erp_order_is_resent_sooner_and_a_failed_one_restarts_by_hand() -> None:
    order = new_erp_order()
    order.refused("", T0, backoff)
    assert order.last_error == "rejected by the ERP"
    assert order.next_attempt_at == T0 + timedelta(minutes=1)
    order.give_up()
    with pytest.raises(LifecycleViolation):
        order.give_up()
    order.restart(T0, backoff)
    assert (order.status, order.attempts, order.last_error) == (ErpOrderStatus.SENT, 1, "")


@pytest.mark.parametrize("before", ["SENT", "ACKNOWLEDGED", "FAILED"])
def test_an_erp_order_of_an_ended_ticket_is_cancelled_whatever_it_reached(before) -> None:
    order = new_erp_order()
    if before == "ACKNOWLEDGED":
        order.acknowledge("ERP-1", T0)
    elif before == "FAILED":
        order.give_up()
    assert order.cancel(T0, backoff) is True
    assert (order.status, order.attempts, order.is_due(T0 + timedelta(hours=1))) == (
        ErpOrderStatus.CANCELLING, 1, True)
    assert order.cancel(T0, backoff) is False  # asked once
    assert order.acknowledge("ERP-late", T0) is False  # a late ack of the order itself changes nothing
    assert order.status == ErpOrderStatus.CANCELLING
    order.give_up()
    assert order.status == ErpOrderStatus.CANCEL_FAILED
    order.restart(T0, backoff)
    assert order.status == ErpOrderStatus.CANCELLING  # ops starts the cancel again, not the order
    assert order.cancelled() is True
    assert order.cancelled() is False
    assert order.cancel(T0, backoff) is False


def test_a_shipment_is_dispatched_once() -> None:
    shipment = Shipment.requested(shipment_id=uuid.uuid4(), ticket_id="T1", ticket_no="AS1", order_id="O1",
                                  kind=ShipmentKind.EXCHANGE_SHIPMENT, lines=(SkuQuantity("SKU-A", 1),), at=T0)
    assert shipment.status == ShipmentStatus.REQUESTED
    assert shipment.dispatch("SF", "SF1", "wh-1", T0) is True
    assert shipment.dispatch("YTO", "YT2", "wh-2", T0) is False
    assert shipment.waybill == "SF1"


def test_units_are_counted_per_sku_in_first_seen_order() -> None:
    assert sku_totals([("B", 1), ("A", 2), ("B", 3)]) == (SkuQuantity("B", 4), SkuQuantity("A", 2))
