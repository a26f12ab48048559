"""Which after-sales an order allows: one test row per row of DOMAIN.md's table, and the unit rules."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import errors
from services.domain.eligibility import (
    ALLOWED_TYPES,
    AfterSalesRequest,
    Claim,
    ClaimKind,
    RequestedUnits,
    assess,
    claim_kind,
    may_become_allowed,
)
from services.domain.model import AfterSalesType as A
from services.domain.model import OrderState as O
from services.domain.model import TicketStatus
from services.domain.order import OrderLine
from services.domain.policy import Policy
from services.domain.reasons import DEFAULT_REASONS, Reason

from .builders import T0, order

REASONS = {r.code: r for r in DEFAULT_REASONS}
NOW = T0 + timedelta(days=3)
ALLOWED = {
    O.PENDING_PAYMENT: {A.CANCEL},
    O.PAID: {A.REFUND_ONLY},
    O.SHIPPED: {A.REFUND_ONLY, A.RETURN_AND_REFUND, A.EXCHANGE},
    O.COMPLETED: {A.REFUND_ONLY, A.RETURN_AND_REFUND, A.EXCHANGE, A.REPAIR},
    O.CLOSED: set(),
}


def request(type_: A, lines=((1, 1),), reason="OTHER", evidence=(), buyer="B1") -> AfterSalesRequest:
    return AfterSalesRequest(buyer, type_, tuple(RequestedUnits(n, q) for n, q in lines), reason, tuple(evidence))


DEFAULT_POLICY = Policy()


def check(o, req, claims=(), policy=DEFAULT_POLICY, now=NOW, reason=None):
    return assess(o, req, claims, reason or REASONS.get(req.reason_code), policy, now)


@pytest.mark.parametrize(("state", "type_"), [(s, t) for s in O for t in A])
def test_allowed_types_table(state, type_):
    o = order(state)
    if type_ in ALLOWED[state]:
        planned = check(o, request(type_))
        assert planned
    else:
        with pytest.raises(errors.TypeNotAllowed):
            check(o, request(type_))


def test_allowed_types_table_matches_the_domain_document():
    assert {s: set(t) for s, t in ALLOWED_TYPES.items()} == ALLOWED


def test_cancel_covers_the_whole_order_and_refunds_nothing():
    planned = check(order(O.PENDING_PAYMENT), request(A.CANCEL, lines=()))
    assert [(p.line_no, p.quantity, p.cap_cents) for p in planned] == [(1, 3, 0), (2, 1, 0)]


def test_completed_order_outside_the_window_is_refused_with_a_reason():
    o = order(O.COMPLETED, completed_at=NOW - timedelta(days=8))
    with pytest.raises(errors.OutsideAfterSalesWindow, match="7 days"):
        check(o, request(A.RETURN_AND_REFUND))


def test_a_shop_may_extend_the_window_to_15_days():
    o = order(O.COMPLETED, completed_at=NOW - timedelta(days=8))
    assert check(o, request(A.RETURN_AND_REFUND), policy=Policy().with_overrides({"after_sales_window_days": 15}))


def test_repair_is_bound_to_the_warranty_not_the_after_sales_window():
    a_month_ago = order(O.COMPLETED, completed_at=NOW - timedelta(days=30))
    assert check(a_month_ago, request(A.REPAIR, reason="QUALITY_PROBLEM", evidence=("photo-1",)))
    with pytest.raises(errors.OutsideAfterSalesWindow, match="7 days"):
        check(a_month_ago, request(A.RETURN_AND_REFUND))
    expired = order(O.COMPLETED, completed_at=NOW - timedelta(days=366))
    with pytest.raises(errors.OutsideAfterSalesWindow, match="warranty of 365 days"):
        check(expired, request(A.REPAIR, reason="QUALITY_PROBLEM", evidence=("photo-1",)))


def test_refund_cap_is_the_units_share_of_the_paid_amount():
    planned = check(order(O.SHIPPED), request(A.RETURN_AND_REFUND, lines=((1, 2),)))
    assert planned[0].cap_cents == 6666
    assert planned[0].positions == (0, 1)


def test_units_in_an_active_ticket_cannot_be_requested_again():
    claims = [Claim(1, (0, 1), ClaimKind.ACTIVE)]
    with pytest.raises(errors.UnitsAlreadyInActiveTicket):
        check(order(O.SHIPPED), request(A.REFUND_ONLY, lines=((1, 2),)), claims)
    assert check(order(O.SHIPPED), request(A.REFUND_ONLY, lines=((1, 1),)), claims)[0].positions == (2,)


def test_refunded_units_cannot_start_another_ticket():
    claims = [Claim(1, (0, 1, 2), ClaimKind.REFUNDED)]
    with pytest.raises(errors.UnitsAlreadyRefunded):
        check(order(O.COMPLETED), request(A.EXCHANGE), claims)


def test_exchanged_units_get_no_second_after_sales_unless_the_shop_allows_it():
    claims = [Claim(2, (0,), ClaimKind.EXCHANGED)]
    req = request(A.RETURN_AND_REFUND, lines=((2, 1),))
    with pytest.raises(errors.UnitsAlreadyExchanged):
        check(order(O.COMPLETED), req, claims)
    allowing = Policy().with_overrides({"allow_after_sales_on_exchanged_units": True})
    assert check(order(O.COMPLETED), req, claims, policy=allowing)


@pytest.mark.parametrize(("status", "kind"), [
    (TicketStatus.PENDING_REVIEW, ClaimKind.ACTIVE), (TicketStatus.REFUNDING, ClaimKind.ACTIVE),
    (TicketStatus.CLOSED, None), (TicketStatus.COMPLETED, ClaimKind.REFUNDED)])
def test_closed_tickets_free_their_units(status, kind):
    assert claim_kind(A.RETURN_AND_REFUND, status) == kind


def test_a_refund_only_below_the_units_worth_is_a_compensation():
    assert claim_kind(A.REFUND_ONLY, TicketStatus.COMPLETED, paid_in_full=False) == ClaimKind.COMPENSATED
    assert claim_kind(A.REFUND_ONLY, TicketStatus.COMPLETED, paid_in_full=True) == ClaimKind.REFUNDED
    # the goods of a return came back: a lower amount (damage) still ends the units' after-sales
    assert claim_kind(A.RETURN_AND_REFUND, TicketStatus.COMPLETED, paid_in_full=False) == ClaimKind.REFUNDED


def test_compensated_units_stay_open_for_what_is_left_of_them():
    claims = [Claim(1, (0,), ClaimKind.COMPENSATED, refunded_cents=1_000)]  # unit 0 is worth 3,333
    planned = check(order(O.COMPLETED), request(A.RETURN_AND_REFUND, lines=((1, 2),)), claims)
    assert planned[0].positions == (0, 1)
    assert planned[0].cap_cents == 3_333 - 1_000 + 3_333
    assert check(order(O.COMPLETED), request(A.REPAIR, reason="QUALITY_PROBLEM", evidence=("p",)), claims)


@given(paid=st.integers(0, 100_000), quantity=st.integers(1, 6), data=st.data())
def test_compensations_and_later_refunds_never_add_up_past_the_paid_amount(paid, quantity, data):
    """Any chain of compensations on some units, then a ticket for some or all of the line: Σ ≤ paid,
    and a ticket for the whole line is worth exactly what the compensations left."""
    lines = [OrderLine(1, "SKU-A", quantity, paid // quantity + 1, paid)]
    claims: list[Claim] = []
    refunded = 0
    for _ in range(data.draw(st.integers(0, 4))):
        wanted = data.draw(st.integers(1, quantity))
        (plan,) = check(order(O.COMPLETED, lines=lines), request(A.REFUND_ONLY, lines=((1, wanted),)), claims)
        cents = data.draw(st.integers(0, max(plan.cap_cents - 1, 0)))  # below the cap: a compensation
        claims.append(Claim(1, plan.positions, ClaimKind.COMPENSATED, cents))
        refunded += cents
    (some,) = check(order(O.COMPLETED, lines=lines),
                    request(A.REFUND_ONLY, lines=((1, data.draw(st.integers(1, quantity))),)), claims)
    assert refunded + some.cap_cents <= paid
    (rest,) = check(order(O.COMPLETED, lines=lines), request(A.REFUND_ONLY, lines=((1, quantity),)), claims)
    assert refunded + rest.cap_cents == paid


def test_completed_exchange_marks_units_exchanged_and_repair_frees_them():
    assert claim_kind(A.EXCHANGE, TicketStatus.COMPLETED) == ClaimKind.EXCHANGED
    assert claim_kind(A.REPAIR, TicketStatus.COMPLETED) is None


@pytest.mark.parametrize("lines", [((1, 0),), ((1, 4),), ((9, 1),), ((1, 1), (1, 1)), ()])
def test_bad_quantities_and_lines_are_refused(lines):
    with pytest.raises((errors.InvalidQuantity, errors.UnknownLine)):
        check(order(O.SHIPPED), request(A.REFUND_ONLY, lines=lines))


def test_quality_reasons_need_photos_for_returns():
    with pytest.raises(errors.EvidenceRequired):
        check(order(O.SHIPPED), request(A.RETURN_AND_REFUND, reason="QUALITY_PROBLEM"))
    assert check(order(O.SHIPPED), request(A.RETURN_AND_REFUND, reason="QUALITY_PROBLEM", evidence=["p.jpg"]))


def test_hidden_or_foreign_reasons_are_refused():
    hidden = Reason("OTHER", "Other", (A.REFUND_ONLY,), visible=False)
    with pytest.raises(errors.ReasonNotAvailable):
        check(order(O.PAID), request(A.REFUND_ONLY), reason=hidden)
    with pytest.raises(errors.ReasonNotAvailable):
        check(order(O.COMPLETED), request(A.REPAIR, reason="NO_LONGER_WANTED"))


def test_only_the_buyer_of_the_order_may_ask():
    with pytest.raises(errors.NotYourOrder):
        check(order(O.PAID), request(A.REFUND_ONLY, buyer="someone-else"))


@pytest.mark.parametrize(("state", "type_", "expected"), [
    (O.PENDING_PAYMENT, A.REFUND_ONLY, True), (O.PAID, A.RETURN_AND_REFUND, True), (O.SHIPPED, A.REPAIR, True),
    (O.PAID, A.REFUND_ONLY, False), (O.COMPLETED, A.CANCEL, False), (O.CLOSED, A.REFUND_ONLY, False),
    (O.SHIPPED, A.CANCEL, False)])
def test_a_request_waits_only_when_a_later_order_state_would_allow_it(state, type_, expected):
    assert may_become_allowed(state, type_) is expected


@pytest.mark.parametrize(("overrides", "named"), [
    ({"has_erp": "false"}, "has_erp"), ({"large_amount_threshold_cents": 12.9}, "large_amount_threshold_cents"),
    ({"large_amount_threshold_cents": True}, "large_amount_threshold_cents"), ({"return_window_days": "7"},
                                                                               "return_window_days"),
    ({"after_sales_windw_days": 15}, "after_sales_windw_days"), ({"review_sla": -1}, "review_sla"),
])
def test_a_policy_override_of_the_wrong_key_or_type_is_refused_with_the_key_named(overrides, named):
    with pytest.raises(ValueError, match=named):
        Policy().with_overrides(overrides)


def test_a_worker_with_a_wrong_shop_policy_stops_at_start_with_the_key_named():
    from pydantic import ValidationError

    from services.common.settings import Settings

    with pytest.raises(ValidationError, match="has_erp"):
        Settings(shop_policies='{"shop-x": {"has_erp": "false"}}')
    assert Settings(shop_policies='{"shop-x": {"has_erp": false}}').policy_for("shop-x").has_erp is False


def variant(sku: str, price: int, type_: A = A.EXCHANGE) -> AfterSalesRequest:
    return AfterSalesRequest("B1", type_, (RequestedUnits(1, 1, sku, price),), "OTHER")


def test_an_exchange_may_ship_another_variant_at_the_same_list_price():
    (planned,) = check(order(O.COMPLETED), variant("SKU-A-XL", 3400))
    assert (planned.sku, planned.exchange_sku) == ("SKU-A", "SKU-A-XL")
    (same,) = check(order(O.COMPLETED), variant("SKU-A", 3400))
    assert same.exchange_sku is None  # the same sku is a plain exchange


def test_a_variant_at_another_price_is_refused_with_the_way_that_works():
    with pytest.raises(errors.VariantPriceDiffers, match="return"):
        check(order(O.COMPLETED), variant("SKU-A-PRO", 3900))


def test_only_an_exchange_ships_another_variant():
    with pytest.raises(errors.VariantNotExchangeable):
        check(order(O.COMPLETED), variant("SKU-A-XL", 3400, A.RETURN_AND_REFUND))
