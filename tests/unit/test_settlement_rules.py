"""The settlement rules: subsidy and fee recomputed in proportion to what is kept, whatever the
sequence of refunds (their shares add up to the whole, to the cent), the order's entry waiting
for its after-sales, and the cycles a statement covers."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.policy import Policy
from services.domain.settlement import (
    Amounts,
    CyclePeriod,
    SettlementCycle,
    SettlementOrder,
    kept_after,
    refund_adjustment,
)


@st.composite
def order_and_refunds(draw: st.DrawFn) -> tuple[Amounts, list[int]]:
    paid = draw(st.integers(1, 10_000_000))
    order = Amounts(paid, draw(st.integers(0, paid)), draw(st.integers(0, paid)))
    refunds, left = [], paid
    for _ in range(draw(st.integers(0, 6))):
        if left == 0:
            break
        refund = draw(st.integers(1, left))
        refunds.append(refund)
        left -= refund
    if draw(st.booleans()) and left:
        refunds.append(left)  # the rest: a full refund
    return order, refunds


@given(order_and_refunds())
def test_the_adjustments_of_any_refunds_add_up_to_what_is_kept(case: tuple[Amounts, list[int]]) -> None:
    order, refunds = case
    settled, refunded = order.net_cents, 0
    for refund in refunds:
        adjustment = refund_adjustment(order, refunded, refund)
        assert adjustment.paid_cents == -refund
        assert -order.subsidy_cents <= adjustment.subsidy_cents <= 0  # the platform only takes back
        assert -order.fee_cents <= adjustment.fee_cents <= 0  # and only gives back
        settled += adjustment.net_cents
        refunded += refund
    assert settled == kept_after(order, refunded).net_cents
    if refunded == order.paid_cents:
        assert kept_after(order, refunded) == Amounts(0, 0, 0)  # fully refunded: settles at zero


@given(st.integers(1, 10_000_000), st.integers(0, 10_000_000), st.data())
def test_the_kept_shares_are_the_exact_proportion_rounded_half_up(paid: int, fee: int, data: st.DataObject) -> None:
    refunded = data.draw(st.integers(0, paid))
    kept = kept_after(Amounts(paid, 0, fee), refunded)
    exact = fee * (paid - refunded) / paid
    assert abs(kept.fee_cents - exact) <= 0.5


def test_a_refund_beyond_what_was_paid_is_not_a_settlement() -> None:
    with pytest.raises(ValueError, match="refunded 1100 of an order that paid 1000"):
        refund_adjustment(Amounts(1_000, 0, 10), 900, 200)


def test_an_order_enters_once_paid_completed_or_closed_with_no_after_sales_open() -> None:
    def state(order: SettlementOrder) -> tuple[bool, str]:
        return order.ready_to_enter(), order.held_because()

    order = SettlementOrder("O-1", "shop-1", amounts=Amounts(1_000, 0, 10), paid=True)
    assert state(order) == (False, "not completed")
    order.completed, order.open_tickets = True, {"T-1"}
    assert state(order) == (False, "after-sales open")
    order.open_tickets.clear()
    assert state(order) == (True, "")
    order.entered = True
    assert state(order) == (False, "")
    never_paid = SettlementOrder("O-2", "shop-1", amounts=Amounts(1_000, 0, 10), closed=True)
    assert state(never_paid) == (False, "")  # nothing to settle


@pytest.mark.parametrize(("text", "kind", "first", "last", "label"), [
    ("2026-12-05", SettlementCycle.DAILY, date(2026, 12, 5), date(2026, 12, 5), "2026-12-05"),
    ("2026-W49", SettlementCycle.WEEKLY, date(2026, 11, 30), date(2026, 12, 6), "2026-W49"),
    ("2026-02", SettlementCycle.MONTHLY, date(2026, 2, 1), date(2026, 2, 28), "2026-02"),
    ("2026-12", SettlementCycle.MONTHLY, date(2026, 12, 1), date(2026, 12, 31), "2026-12"),
])
def test_a_cycle_is_a_day_a_week_or_a_month(text: str, kind: SettlementCycle, first: date, last: date,
                                            label: str) -> None:
    period = CyclePeriod.parse(text)
    assert (period.kind, period.first, period.last, period.label) == (kind, first, last, label)
    assert CyclePeriod.containing(kind, last) == period
    assert period.payable_on(0) > period.last  # never before T+1


@pytest.mark.parametrize("text", ["2026-13", "2026-W54", "yesterday", "2026-02-30"])
def test_a_cycle_that_does_not_exist_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cycle"):
        CyclePeriod.parse(text)


def test_the_settlement_cycle_is_a_shop_policy_and_only_its_three_values() -> None:
    assert Policy().with_overrides({"settlement_cycle": "monthly"}).settlement_cycle is SettlementCycle.MONTHLY
    with pytest.raises(ValueError, match="daily, weekly, monthly"):
        Policy().with_overrides({"settlement_cycle": "hourly"})
