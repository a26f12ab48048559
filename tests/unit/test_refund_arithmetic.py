"""Refund arithmetic: integer cents, remainder to the last units, whole lines exact."""

from hypothesis import given
from hypothesis import strategies as st

from services.domain.refunds import cap_for_positions, pick_free_positions, shipping_refund, unit_amount


def test_remainder_goes_to_the_last_units():
    assert [unit_amount(10_000, 3, p) for p in range(3)] == [3333, 3333, 3334]


def test_refunding_a_whole_line_returns_exactly_its_paid_amount():
    assert cap_for_positions(10_001, 7, range(7)) == 10_001


def test_lowest_free_positions_are_taken_first():
    assert pick_free_positions(5, {0, 2}, 2) == (1, 3)
    assert pick_free_positions(3, {0, 1, 2}, 1) == ()


def test_shipping_is_refunded_once_for_a_whole_order_before_shipment():
    kwargs = dict(shipping_fee_cents=800, before_shipment=True, order_fully_refunded_after_this=True,
                  reviewer_flag=False)
    assert shipping_refund(already_refunded_cents=0, **kwargs) == 800
    assert shipping_refund(already_refunded_cents=800, **kwargs) == 0


def test_shipping_is_not_refunded_after_shipment_unless_the_reviewer_says_so():
    base = dict(shipping_fee_cents=800, already_refunded_cents=0, before_shipment=False,
                order_fully_refunded_after_this=True)
    assert shipping_refund(reviewer_flag=False, **base) == 0
    assert shipping_refund(reviewer_flag=True, **base) == 800


def test_shipping_is_not_refunded_for_a_partial_refund_before_shipment():
    assert shipping_refund(shipping_fee_cents=800, already_refunded_cents=0, before_shipment=True,
                           order_fully_refunded_after_this=False, reviewer_flag=False) == 0


@given(paid=st.integers(0, 10**9), qty=st.integers(1, 500))
def test_units_differ_by_at_most_one_cent_and_add_up(paid, qty):
    units = [unit_amount(paid, qty, p) for p in range(qty)]
    assert sum(units) == paid
    assert max(units) - min(units) <= 1
    assert units == sorted(units)


@given(paid=st.integers(0, 10**9), qty=st.integers(1, 60), data=st.data())
def test_any_sequence_of_partial_tickets_refunds_exactly_the_paid_amount(paid, qty, data):
    taken: set[int] = set()
    total = 0
    while len(taken) < qty:
        want = data.draw(st.integers(1, qty - len(taken)))
        positions = pick_free_positions(qty, taken, want)
        assert len(positions) == want
        assert not taken & set(positions)
        taken |= set(positions)
        total += cap_for_positions(paid, qty, positions)
        assert total <= paid
    assert total == paid
