"""One shop's after-sales day, small enough to compute its figures by hand (they are written out
in ``EXPECTED_*`` below, with the arithmetic). The unit test feeds it to monitoring's use cases
on the fakes; the integration test to the monitoring runtime on Kafka and PostgreSQL, twice.

Times are UTC; the reporting zone is Asia/Shanghai (UTC+8), so 2026-11-02 runs from 11-01 16:00
to 11-02 16:00 UTC, and the alerts at 17:30 and 18:00 UTC fall on 11-03 there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from contracts import Contract, Envelope, Money, new_envelope, ops
from contracts import aftersales as c
from contracts import orders as o
from contracts.topics import DLQ, OPS_ALERTS, ORDER_EVENTS, SETTLEMENT, TICKETS, WMS_EVENTS

DAY = date(2026, 11, 2)
NEXT_DAY = date(2026, 11, 3)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 2, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Day:
    shop_id: str
    first_order: str
    second_order: str
    refund_ticket: str
    return_ticket: str
    messages: list[tuple[str, Envelope[Any]]]  # (topic, envelope) in the order they are read


def _line(line_no: int, sku: str, quantity: int, cents: int) -> c.TicketLineView:
    return c.TicketLineView(line_no=line_no, sku=sku, quantity=quantity, cap=Money(cents=cents),
                            refund=Money(cents=cents))


def _view(ticket_id: str, order_id: str, shop_id: str, type_: c.AfterSalesType, status: c.TicketStatus,
          line: c.TicketLineView, reason: str, applied_at: datetime) -> c.TicketView:
    return c.TicketView(ticket_id=ticket_id, ticket_no=ticket_id, order_id=order_id, shop_id=shop_id,
                        buyer_id="buyer-day", type=type_, status=status, lines=[line], refund_total=line.refund,
                        reason_code=reason, applied_at=applied_at)


def day() -> Day:
    """The day with ids of its own (each test its own shop, orders and tickets)."""
    run = uuid.uuid4().hex[:8]
    shop, first, second = f"shop-day-{run}", f"O-day1-{run}", f"O-day2-{run}"
    refund_ticket, return_ticket = f"T-day1-{run}", f"T-day2-{run}"
    messages: list[tuple[str, Envelope[Any]]] = []

    def add(topic: str, payload: Contract, key: str, when: datetime, producer: str) -> None:
        messages.append((topic, new_envelope(payload, key=key, producer=producer, occurred_at=when)))

    def placed(order_id: str, lines: list[o.OrderLine], when: datetime) -> None:
        add(ORDER_EVENTS.name, o.OrderPlaced(order_id=order_id, shop_id=shop, buyer_id="buyer-day", placed_at=when,
                                             lines=lines, shipping_fee=Money(cents=0)), order_id, when, "order-system")

    def moved(view: c.TicketView, from_: c.TicketStatus, to: c.TicketStatus, when: datetime) -> None:
        add(TICKETS.name, c.TicketStatusChanged(ticket=view.model_copy(update={"status": to}), from_status=from_,
                                                to_status=to, actor=c.Actor(role=c.Role.SYSTEM, id="test")),
            view.order_id, when, "review")

    placed(first, [o.OrderLine(line_no=1, sku="SKU-A", category="shoes", quantity=2, unit_price=Money(cents=5000),
                               paid=Money(cents=10_000)),
                   o.OrderLine(line_no=2, sku="SKU-B", category="hats", quantity=1, unit_price=Money(cents=3000),
                               paid=Money(cents=3000))], at(1))
    placed(second, [o.OrderLine(line_no=1, sku="SKU-A", category="shoes", quantity=3, unit_price=Money(cents=5000),
                                paid=Money(cents=15_000))], at(2))

    refund = _view(refund_ticket, first, shop, c.AfterSalesType.REFUND_ONLY, c.TicketStatus.PENDING_REVIEW,
                   _line(1, "SKU-A", 1, 5000), "NO_LONGER_WANTED", at(3))
    add(TICKETS.name, c.TicketOpened(request_id=uuid.uuid4(), ticket=refund), first, at(3), "intake")
    moved(refund, c.TicketStatus.PENDING_REVIEW, c.TicketStatus.REFUNDING, at(3, 30))
    moved(refund, c.TicketStatus.REFUNDING, c.TicketStatus.REFUND_FAILED, at(3, 40))

    returned = _view(return_ticket, second, shop, c.AfterSalesType.RETURN_AND_REFUND, c.TicketStatus.PENDING_REVIEW,
                     _line(1, "SKU-A", 3, 15_000), "QUALITY_ISSUE", at(4))
    add(TICKETS.name, c.TicketOpened(request_id=uuid.uuid4(), ticket=returned), second, at(4), "intake")

    moved(refund, c.TicketStatus.REFUND_FAILED, c.TicketStatus.REFUNDING, at(4, 40))
    moved(refund, c.TicketStatus.REFUNDING, c.TicketStatus.COMPLETED, at(4, 50))
    add(SETTLEMENT.name, ops.SettlementAdjusted(
        ticket_id=refund_ticket, order_id=first, shop_id=shop, refund=Money(cents=5000),
        settlement_before=Money(cents=28_000), settlement_after=Money(cents=23_000)), first, at(4, 50), "finance")
    add(DLQ.name, ops.DeadLetter(
        source_topic=WMS_EVENTS.name, partition=0, offset=7, consumer_group="warehouse",
        error_class="ValidationError", reason="GoodsInspected: field 'result' missing", original_key=first,
        original_value="{}", attempts=1, failed_at=at(5), reason_code="SCHEMA_VIOLATION"),
        first, at(5), "warehouse")
    moved(returned, c.TicketStatus.PENDING_REVIEW, c.TicketStatus.AWAITING_RETURN, at(6))
    for when in (at(17, 30), at(18)):  # the same breach alerted twice: one item, one breach
        add(OPS_ALERTS.name, ops.OpsAlert(kind="AWAITING_RETURN_SLA_BREACHED", severity=ops.Severity.WARNING,
                                          message="return not shipped in time", order_id=second,
                                          ticket_id=return_ticket), second, when, "scheduler")
    return Day(shop, first, second, refund_ticket, return_ticket, messages)


# ---------------------------------------------------------------- the hand-computed figures
# SKU-A sold 2 + 3 = 5 units, SKU-B 1: 6 units sold on 11-02 (both orders at 09:00 and 10:00 in
# Shanghai). Tickets on 1 + 3 units of SKU-A: 4 units, so SKU-A's rate is 4/5 = 80.0 %, the shoes'
# the same, the hats' 0/1 = 0.0 %, and the shop's 4/6 = 66.7 %.
EXPECTED_UNITS = {"sold": 6, "in_tickets": 4, "rate": "66.7%", "SKU-A": "80.0%", "SKU-B": "0.0%",
                  "shoes": "80.0%", "hats": "0.0%"}
EXPECTED_REASONS = {("REFUND_ONLY", "NO_LONGER_WANTED"): 1, ("RETURN_AND_REFUND", "QUALITY_ISSUE"): 1}
# One refund failed at 03:40 and was retried at 04:40; the only one completed paid 50.00.
EXPECTED_REFUNDS = {"completed": 1, "failed": 1, "retried": 1, "refunded": {"CNY": 5000}}
# Stays that ended on 11-02: PENDING_REVIEW 30 min (refund) and 120 min (return), REFUNDING 10 and
# 10 min, REFUND_FAILED 60 min. Nearest rank: p50 of two values is the smaller, p95 the larger.
EXPECTED_TIME_IN_STATE = {"PENDING_REVIEW": (2, 1800.0, 7200.0, 7200.0), "REFUNDING": (2, 600.0, 600.0, 600.0),
                          "REFUND_FAILED": (1, 3600.0, 3600.0, 3600.0)}
# On 11-03 (Shanghai) one SLA breach of a ticket in AWAITING_RETURN (alerted twice).
EXPECTED_BREACHES_NEXT_DAY = {"AWAITING_RETURN": 1}
# The dead letter has no shop: it counts in the all-shops figures, as a WMS integration error too.
EXPECTED_DEAD_LETTERS = {(WMS_EVENTS.name, "SCHEMA_VIOLATION"): 1}
# Line states: the first order's line 1 had 1 of its 2 units refunded; the second's is in a return.
EXPECTED_LABELS = {"first": ("PARTLY_REFUNDED", "部分退款", 1, 5000), "second": ("IN_PROGRESS", "售后中", 0, 0)}
