"""The quote's arithmetic: for any line, quoting its units in any split gives back exactly what
was paid, and the coupon, points and promotion to the cent, and each quote's share of each is
fair: within one odd cent per unit of the exact proportion."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.domain.eligibility import PlannedLine
from services.domain.model import AfterSalesType
from services.domain.order import Order, OrderLine
from services.domain.quote import quote
from services.domain.refunds import cap_for_positions


@st.composite
def lines_and_splits(draw: st.DrawFn) -> tuple[OrderLine, list[tuple[int, ...]]]:
    quantity = draw(st.integers(1, 12))
    unit_price = draw(st.integers(1, 100_000))
    listed = unit_price * quantity
    paid = draw(st.integers(0, listed))
    coupon = draw(st.integers(0, listed - paid))
    points = draw(st.integers(0, listed - paid - coupon))
    positions = draw(st.permutations(list(range(quantity))))
    cuts = sorted(draw(st.sets(st.integers(1, max(quantity - 1, 1)), max_size=quantity - 1)))
    parts = [tuple(sorted(positions[a:b])) for a, b in zip([0, *cuts], [*cuts, quantity], strict=True)]
    line = OrderLine(line_no=1, sku="SKU", quantity=quantity, unit_price_cents=unit_price, paid_cents=paid,
                     coupon_cents=coupon, points_cents=points)
    return line, [part for part in parts if part]


@given(lines_and_splits())
def test_quotes_of_a_split_line_add_up_to_the_line_to_the_cent(drawn: tuple[OrderLine, list[tuple[int, ...]]]) -> None:
    line, parts = drawn
    order = Order(order_id="O-1", shop_id="s", buyer_id="b", placed_at=datetime(2026, 1, 1, tzinfo=UTC), lines=[line])
    quoted = [quote(order, AfterSalesType.RETURN_AND_REFUND, [PlannedLine(
        1, "SKU", len(part), part, cap_for_positions(line.paid_cents, line.quantity, part), line.paid_cents,
        line.quantity)], [], before_shipment=False).lines[0] for part in parts]
    assert sum(q.refund_cents for q in quoted) == line.paid_cents
    assert sum(q.coupon_cents for q in quoted) == line.coupon_cents
    assert sum(q.points_cents for q in quoted) == line.points_cents
    promotion = line.unit_price_cents * line.quantity - line.paid_cents - line.coupon_cents - line.points_cents
    for q in quoted:  # a fair share: within one odd cent per unit of the exact proportion
        assert q.list_cents == line.unit_price_cents * q.quantity
        for share, whole in ((q.refund_cents, line.paid_cents), (q.coupon_cents, line.coupon_cents),
                             (q.points_cents, line.points_cents), (q.promotion_cents, promotion)):
            assert abs(share * line.quantity - whole * q.quantity) < line.quantity * q.quantity
    assert sum(q.promotion_cents for q in quoted) == (
        line.unit_price_cents * line.quantity - line.paid_cents - line.coupon_cents - line.points_cents)
