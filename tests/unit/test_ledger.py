"""The refund ledger: per line, Σ refunds (in flight or done) never exceeds what was paid."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.errors import RefundExceedsPaid
from services.domain.refunds import LedgerLine, RefundLedger


def ledger() -> RefundLedger:
    return RefundLedger({1: LedgerLine(10_000, 3), 2: LedgerLine(4_500, 1)}, shipping_fee_cents=800)


def test_a_refund_that_would_exceed_the_paid_amount_is_refused_and_changes_nothing():
    led = ledger()
    led.reserve({1: (6_667, 2)})
    with pytest.raises(RefundExceedsPaid):
        led.reserve({1: (3_334, 1), 2: (4_500, 1)})
    assert led.lines[1].reserved_cents == 6_667
    assert led.lines[2].reserved_cents == 0


def test_shipping_is_refunded_at_most_once():
    led = ledger()
    led.reserve({}, shipping_cents=800)
    with pytest.raises(RefundExceedsPaid):
        led.reserve({}, shipping_cents=800)


def test_a_failed_refund_releases_its_reservation():
    led = ledger()
    led.reserve({2: (4_500, 1)})
    led.release({2: (4_500, 1)})
    led.reserve({2: (4_500, 1)})


def test_the_order_is_fully_refunded_when_every_unit_is():
    led = ledger()
    led.reserve({1: (10_000, 3), 2: (4_500, 1)})
    assert not led.fully_refunded
    led.confirm({1: (10_000, 3), 2: (4_500, 1)})
    assert led.fully_refunded


def test_a_compensation_moves_cents_not_units_and_keeps_the_order_open():
    led = RefundLedger({1: LedgerLine(23_900, 1)}, shipping_fee_cents=0)
    led.reserve({1: (5_000, 0)})  # a refund-only lowered to 5,000: the buyer keeps the unit
    led.confirm({1: (5_000, 0)})
    assert not led.fully_refunded
    assert not led.request_close()
    assert not led.all_units_reserved_with({1: (0, 1)})  # the unit back, but 18,900 still unrefunded
    led.reserve({1: (18_900, 1)})  # later the rest of it, the unit back or stopped
    led.confirm({1: (18_900, 1)})
    assert led.fully_refunded
    assert led.request_close()
    assert not led.request_close()  # asked once


def test_units_paid_nothing_count_as_refunded():
    led = RefundLedger({1: LedgerLine(0, 2)}, shipping_fee_cents=0)
    led.confirm({1: (0, 2)})
    assert led.fully_refunded


operation = st.tuples(st.sampled_from(["reserve", "release", "confirm"]), st.integers(1, 2),
                      st.integers(-100, 12_000), st.integers(0, 3))


@given(st.lists(operation, max_size=40))
def test_no_sequence_of_decisions_exceeds_a_lines_paid_amount(ops):
    led = ledger()
    reserved: list[tuple[int, int, int]] = []
    for kind, line, cents, units in ops:
        if kind == "reserve":
            try:
                led.reserve({line: (cents, units)})
                reserved.append((line, cents, units))
            except RefundExceedsPaid:
                pass
        elif kind == "release" and reserved:
            line, cents, units = reserved.pop()
            led.release({line: (cents, units)})
        elif kind == "confirm" and reserved:
            line, cents, units = reserved.pop()
            led.confirm({line: (cents, units)})
        for ln in led.lines.values():
            assert 0 <= ln.reserved_cents <= ln.paid_cents
            assert 0 <= ln.reserved_units <= ln.quantity
            assert ln.refunded_cents <= ln.reserved_cents
