"""The refund quote on the fakes: what a buyer is offered before asking equals what the ticket
then opens with, shows what is not refunded, holds no units, and is refused for the same
reasons a request would be."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from contracts import Money
from contracts import aftersales as c
from contracts import orders as o
from services.domain import errors

from .shop import Shop

# a kettle listed at ¥60.00 each, two bought for ¥100.00 after a ¥10.00 coupon and ¥6.00 of points
# (the shop's promotion took the other ¥4.00), ¥8.00 shipping
LISTED, PAID, COUPON, POINTS, SHIPPING = 6_000, 10_000, 1_000, 600, 800


async def kettles(shop: Shop, *, state: str = "SHIPPED") -> str:
    order_id = f"O-{uuid.uuid4().hex[:8]}"
    placed = shop.now - timedelta(days=1)
    facts: list[o.OrderPlaced | o.OrderPaid | o.OrderShipped] = [
        o.OrderPlaced(order_id=order_id, shop_id="shop-1", buyer_id="buyer-1", placed_at=placed, lines=[
            o.OrderLine(line_no=1, sku="SKU-KETTLE", quantity=2, unit_price=Money.cny(LISTED), paid=Money.cny(PAID),
                        coupon_deduction=Money.cny(COUPON), points_deduction=Money.cny(POINTS))],
            shipping_fee=Money.cny(SHIPPING)),
        o.OrderPaid(order_id=order_id, paid_at=placed + timedelta(minutes=1))]
    if state == "SHIPPED":
        facts.append(o.OrderShipped(order_id=order_id, shipped_at=placed + timedelta(hours=2)))
    for fact in facts:
        await shop.deliver("intake", fact, key=order_id, producer="order-system")
    return order_id


async def quote(shop: Shop, order_id: str, quantity: int, type_: str = "REFUND_ONLY",
                reason: str | None = None) -> c.AfterSalesQuoted:
    asked = c.QuoteAfterSales(request_id=uuid.uuid4(), order_id=order_id, buyer_id="buyer-1",
                              type=c.AfterSalesType(type_), lines=[c.RequestedLine(line_no=1, quantity=quantity)],
                              reason_code=reason)
    await shop.deliver("intake", asked, key=order_id, producer="buyer-frontend")
    answer: c.AfterSalesQuoted = shop.last("AfterSalesQuoted")
    assert answer.request_id == asked.request_id
    return answer


async def test_the_quote_shows_refund_and_what_is_not_refunded_and_the_ticket_opens_with_it() -> None:
    shop = Shop()
    order_id = await kettles(shop)
    offered = await quote(shop, order_id, 1, reason="NO_LONGER_WANTED")
    (line,) = offered.lines
    assert (line.list_price.cents, line.refund.cents, line.coupon.cents, line.virtual_currency.cents,
            line.promotion.cents) == (6_000, 5_000, 500, 300, 200)
    assert (offered.shipping.cents, offered.shipping_if_reviewer_agrees.cents) == (0, SHIPPING)
    assert (offered.total.cents, offered.not_refunded.cents) == (5_000, 1_000)
    assert offered.virtual_currency_returned  # seed 004's default: the coins go back with the refund
    assert shop.db.state.tickets == {}  # a quote opens nothing

    ticket_id = await shop.ask(order_id, quantity=1)
    assert shop.ticket(ticket_id).refund_total_cents == offered.total.cents


async def test_a_quote_holds_no_units_and_a_second_quote_sees_the_open_ticket() -> None:
    shop = Shop()
    order_id = await kettles(shop)
    await quote(shop, order_id, 2)
    await quote(shop, order_id, 2)  # the first quote held nothing
    await shop.ask(order_id, quantity=1)
    offered = await quote(shop, order_id, 1)
    assert offered.total.cents == 5_000  # the other unit (the last one takes the odd cent, none here)
    with pytest.raises(errors.UnitsAlreadyInActiveTicket):
        await quote(shop, order_id, 2)


async def test_a_whole_order_refunded_before_shipment_quotes_the_shipping_back() -> None:
    shop = Shop()
    order_id = await kettles(shop, state="PAID")
    offered = await quote(shop, order_id, 2)
    assert (offered.shipping.cents, offered.total.cents) == (SHIPPING, PAID + SHIPPING)
    part = await quote(shop, order_id, 1)
    assert (part.shipping.cents, part.shipping_if_reviewer_agrees.cents) == (0, SHIPPING)


async def test_an_exchange_quotes_no_money_and_a_refused_request_is_refused_as_a_quote() -> None:
    shop = Shop()
    order_id = await kettles(shop)
    exchange = await quote(shop, order_id, 1, type_="EXCHANGE")
    assert (exchange.total.cents, exchange.lines[0].refund.cents) == (0, 0)
    with pytest.raises(errors.ReasonNotAvailable):
        await quote(shop, order_id, 1, reason="NOT_A_REASON")
    with pytest.raises(errors.InvalidQuantity):
        await quote(shop, order_id, 3)
    with pytest.raises(errors.OrderUnknown):
        await quote(shop, "O-unknown", 1)
    assert shop.sent("TicketOpened") == []
