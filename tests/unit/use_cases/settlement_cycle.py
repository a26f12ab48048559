"""One shop's settlement over two days, small enough to compute by hand (the expected statements
are written out below with the arithmetic). The unit test feeds it to settlement's use cases on
the fakes; the integration test to the settlement worker on Kafka and PostgreSQL, then prints
the statement with ``aftersales settlement statement`` in a process of its own.

Times are UTC; the reporting zone is Asia/Shanghai (UTC+8): 02:00 UTC is 10:00 there, the same
day. 2026-11-10 is a Tuesday of ISO week 2026-W46.

- Order A pays 10,000 (9,200 goods + 800 shipping), the platform subsidises 1,000 and charges a
  500 fee: settled 10,500. It completes on day 1 with nothing open and enters then. A return of
  one unit refunds 2,500 the same day: 75 % is kept, so the subsidy kept is 750 (250 taken back)
  and the fee 375 (125 given back): -2,500 - 250 + 125 = -2,625.
- Order B pays 6,000, subsidy 300, fee 120: settled 6,180. The buyer cancels before shipping
  (a refund-only of all 6,000: -6,000 - 300 + 120 = -6,180), the ticket completes and the order
  closes on day 1: it enters then, with the refund that waited for it, netting 0.
- Order C pays 3,333, no subsidy, fee 100: settled 3,233. It completes on day 1 while a
  refund-only is open, so it is held; ops agree a compensation of 1,000 (the goods stay): 2,333
  of 3,333 kept, the fee kept 100 x 2,333 / 3,333 = 69.99 → 70 (30 given back): -1,000 + 30 =
  -970. The ticket completes on day 2: C enters then, with its compensation.
- Order D is paid and shipped, not completed: held ("not completed").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from contracts import Contract, Envelope, Money, new_envelope
from contracts import aftersales as c
from contracts import orders as o
from contracts.ops import SettlementAdjusted, SettlementKind
from contracts.topics import ORDER_EVENTS, SETTLEMENT, TICKETS

DAY_1 = date(2026, 11, 10)
DAY_2 = date(2026, 11, 11)


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, 9 + day, hour, tzinfo=UTC)


@dataclass(frozen=True)
class Cycle:
    shop_id: str
    orders: dict[str, str]  # "A".."D" → the order id of this run
    messages: list[tuple[str, Envelope[Any]]]  # (topic, envelope) in the order they are read


# (kind, order, paid, subsidy, fee, net) per statement line, in the statement's order
EXPECTED_DAY_1 = [("ORDER", "A", 10_000, 1_000, 500, 10_500), ("REFUND", "A", -2_500, -250, -125, -2_625),
                  ("ORDER", "B", 6_000, 300, 120, 6_180), ("REFUND", "B", -6_000, -300, -120, -6_180)]
EXPECTED_DAY_2 = [("ORDER", "C", 3_333, 0, 100, 3_233), ("COMPENSATION", "C", -1_000, 0, -30, -970)]
# orders, paid, subsidy, fee, given back, net
EXPECTED_DAY_1_TOTALS = (2, 7_500, 750, 375, 8_500, 7_875)
EXPECTED_DAY_2_TOTALS = (1, 2_333, 0, 70, 1_000, 2_263)
EXPECTED_WEEK_TOTALS = (3, 9_833, 750, 445, 9_500, 10_138)
EXPECTED_HELD = [("D", "not completed")]


def cycle() -> Cycle:
    """The two days with ids of their own (each test its own shop, orders and tickets)."""
    run = uuid.uuid4().hex[:8]
    shop = f"shop-settle-{run}"
    orders = {name: f"O-settle-{name}-{run}" for name in "ABCD"}
    messages: list[tuple[str, Envelope[Any]]] = []

    def add(topic: str, payload: Contract, key: str, when: datetime, producer: str) -> None:
        messages.append((topic, new_envelope(payload, key=key, producer=producer, occurred_at=when)))

    def placed(name: str, goods: int, shipping: int, subsidy: int, fee: int) -> None:
        order_id = orders[name]
        add(ORDER_EVENTS.name, o.OrderPlaced(
            order_id=order_id, shop_id=shop, buyer_id="buyer-settle", placed_at=at(0, 2),
            lines=[o.OrderLine(line_no=1, sku=f"SKU-{name}", quantity=4, unit_price=Money(cents=goods // 4),
                               paid=Money(cents=goods))],
            shipping_fee=Money(cents=shipping), platform_subsidy=Money(cents=subsidy), platform_fee=Money(cents=fee)),
            order_id, at(0, 2), "order-system")
        add(ORDER_EVENTS.name, o.OrderPaid(order_id=order_id, paid_at=at(0, 3)), order_id, at(0, 3), "order-system")

    def view(name: str, ticket_id: str, type_: c.AfterSalesType, status: c.TicketStatus, cents: int) -> c.TicketView:
        line = c.TicketLineView(line_no=1, sku=f"SKU-{name}", quantity=1, cap=Money(cents=cents),
                                refund=Money(cents=cents))
        return c.TicketView(ticket_id=ticket_id, ticket_no=ticket_id, order_id=orders[name], shop_id=shop,
                            buyer_id="buyer-settle", type=type_, status=status, lines=[line],
                            refund_total=Money(cents=cents), applied_at=at(1, 1))

    def ticket(name: str, type_: c.AfterSalesType, cents: int, opened: datetime, done: datetime) -> str:
        ticket_id = f"T-settle-{name}-{run}"
        pending = view(name, ticket_id, type_, c.TicketStatus.PENDING_REVIEW, cents)
        add(TICKETS.name, c.TicketOpened(request_id=uuid.uuid4(), ticket=pending), orders[name], opened, "intake")
        add(TICKETS.name, c.TicketStatusChanged(
            ticket=view(name, ticket_id, type_, c.TicketStatus.COMPLETED, cents), from_status=c.TicketStatus.REFUNDING,
            to_status=c.TicketStatus.COMPLETED, actor=c.Actor(role=c.Role.SYSTEM, id="finance")),
            orders[name], done, "finance")
        return ticket_id

    def settled(name: str, ticket_id: str, refund: int, subsidy: int, fee: int, kind: SettlementKind,
                when: datetime) -> None:
        add(SETTLEMENT.name, SettlementAdjusted(
            ticket_id=ticket_id, order_id=orders[name], shop_id=shop, refund=Money(cents=refund),
            settlement_before=Money(cents=0), settlement_after=Money(cents=0),
            subsidy_taken_back=Money(cents=subsidy), fee_given_back=Money(cents=fee), kind=kind),
            orders[name], when, "finance")

    for name, goods, shipping, subsidy, fee in (("A", 9_200, 800, 1_000, 500), ("B", 6_000, 0, 300, 120),
                                                ("C", 3_333, 0, 0, 100), ("D", 2_000, 0, 0, 40)):
        placed(name, goods, shipping, subsidy, fee)
    for name in "ACD":
        add(ORDER_EVENTS.name, o.OrderShipped(order_id=orders[name], shipped_at=at(0, 5)), orders[name], at(0, 5),
            "order-system")
    # A: completes with nothing open, then a return of one unit
    add(ORDER_EVENTS.name, o.OrderCompleted(order_id=orders["A"], completed_at=at(1, 2)), orders["A"], at(1, 2),
        "order-system")
    a_ticket = ticket("A", c.AfterSalesType.RETURN_AND_REFUND, 2_500, at(1, 3), at(1, 6))
    settled("A", a_ticket, 2_500, 250, 125, SettlementKind.REFUND, at(1, 6))
    # B: cancelled before shipping; the refund comes before the ticket's end and the order's close
    b_ticket = ticket("B", c.AfterSalesType.REFUND_ONLY, 6_000, at(1, 3), at(1, 4))
    settled("B", b_ticket, 6_000, 300, 120, SettlementKind.REFUND, at(1, 4))
    messages.insert(-1, messages.pop())  # the adjustment is read before the ticket's end
    add(ORDER_EVENTS.name, o.OrderClosed(order_id=orders["B"], closed_at=at(1, 5), reason="all units refunded"),
        orders["B"], at(1, 5), "order-system")
    # C: a refund-only opened before completion; compensated and completed the next day
    c_ticket = ticket("C", c.AfterSalesType.REFUND_ONLY, 1_000, at(1, 1), at(2, 3))
    completion = messages.pop()
    add(ORDER_EVENTS.name, o.OrderCompleted(order_id=orders["C"], completed_at=at(1, 2)), orders["C"], at(1, 2),
        "order-system")
    settled("C", c_ticket, 1_000, 0, 30, SettlementKind.COMPENSATION, at(2, 3))
    messages.append(completion)
    return Cycle(shop, orders, messages)
