"""The scheduler's jobs on the fakes: deadlines fire, unpaid orders close, parked items expire,
and one item that breaks is set aside while the others move on."""

from __future__ import annotations

import uuid
from typing import Any

from contracts import aftersales as c
from contracts import decisions as d
from contracts import orders as o
from services.domain.model import TicketStatus
from services.scheduler.service import parked_events, ticket_deadlines, unpaid_orders

from .shop import Shop


async def test_a_buyer_who_never_ships_the_return_sees_the_ticket_closed_at_the_deadline() -> None:
    shop = Shop()
    ticket_id = await shop.ask(await shop.order(state="COMPLETED"), "RETURN_AND_REFUND")
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    assert await shop.tick("scheduler", ticket_deadlines(shop.deps)) == 0
    deadline = shop.ticket(ticket_id).deadline_at
    shop.now = deadline
    assert await shop.tick("scheduler", ticket_deadlines(shop.deps)) == 1
    assert shop.ticket(ticket_id).status == TicketStatus.CLOSED
    assert shop.last("TicketStatusChanged").actor.role == c.Role.SYSTEM


async def test_an_unpaid_order_is_closed_once_after_the_payment_timeout() -> None:
    shop = Shop()  # payment timeout: 30 minutes
    order_id = await shop.order(state="PENDING_PAYMENT")
    shop.later(days=2)
    job = unpaid_orders(shop.deps)
    assert await shop.tick("scheduler", job) == 1
    assert await shop.tick("scheduler", job) == 0
    assert [m.order_id for m in shop.sent("CloseOrder")] == [order_id]


async def test_a_request_that_waited_in_vain_is_refused_with_a_readable_reason() -> None:
    shop = Shop()
    request = c.RequestAfterSales(request_id=uuid.uuid4(), order_id="O-never", buyer_id="buyer-1",
                                  type=c.AfterSalesType.REFUND_ONLY, lines=[c.RequestedLine(line_no=1, quantity=1)],
                                  reason_code="NO_LONGER_WANTED")
    assert await shop.deliver("intake", request, key="O-never") == "parked"
    shop.later(seconds=shop.settings.parked_request_wait_seconds + 1)
    assert await shop.tick("scheduler", parked_events(shop.deps)) == 1
    refused = shop.last("RequestRejected")
    assert refused.code == "ORDER_UNKNOWN"
    assert refused.request_id == request.request_id
    assert not shop.db.state.parked


async def test_a_fact_that_never_applies_is_dead_lettered_with_its_reason() -> None:
    shop = Shop()
    await shop.deliver("intake", o.OrderShipped(order_id="O-ghost", shipped_at=shop.now), key="O-ghost")
    shop.later(seconds=shop.settings.parked_event_wait_seconds + 1)
    assert await shop.tick("scheduler", parked_events(shop.deps)) == 1
    letter = shop.last("DeadLetter")
    assert letter.reason_code == "PARKED_TOO_LONG"
    assert letter.original_type == "OrderShipped"


async def test_a_ticket_that_breaks_its_deadline_job_is_set_aside_and_the_others_fire() -> None:
    shop = Shop()
    good = await shop.ask(await shop.order(state="COMPLETED"), "RETURN_AND_REFUND")
    bad = await shop.ask(await shop.order(state="COMPLETED"), "RETURN_AND_REFUND")
    for ticket_id in (good, bad):
        await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    broken: Any = shop.ticket(bad)
    broken.lines = None  # a row the code cannot read: the item's own fault, not an outage
    shop.now = max(shop.ticket(good).deadline_at, shop.ticket(bad).deadline_at)
    job = ticket_deadlines(shop.deps)
    assert await shop.tick("scheduler", job) == 2  # one moved, one quarantined
    assert shop.ticket(good).status == TicketStatus.CLOSED
    assert ("scheduler", "ticket_deadlines", bad) in shop.db.state.quarantined
    assert shop.last("OpsAlert").kind == "PERIODIC_ITEM_QUARANTINED"
    assert await shop.tick("scheduler", job) == 0  # left alone on the next tick

