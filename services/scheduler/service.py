"""Deadlines that fire: every waiting state of a ticket, unpaid orders, parked order events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts import decode
from contracts.aftersales import RequestRejected
from contracts.ops import DeadLetter
from contracts.orders import CloseOrder
from contracts.topics import DLQ, ORDER_EVENTS
from services.common.settings import Settings
from services.common.tickets import save_and_announce
from services.common.uow import UnitOfWork

from .repository import SchedulerRepository

_WAITED_IN_VAIN = {
    "ORDER_UNKNOWN": "We could not find this order. Please try again later.",
    "TYPE_NOT_ALLOWED": "This kind of after-sales is not possible for the order in its current state.",
}


async def fire_ticket_deadlines(uow: UnitOfWork, settings: Settings, now: datetime) -> int:
    repo = SchedulerRepository(uow.session)
    tickets = await repo.overdue_tickets(now)
    for ticket in tickets:
        ticket.on_deadline(now, settings.policy_for(ticket.shop_id))
        await save_and_announce(uow, ticket, None)
    return len(tickets)


async def cancel_unpaid_orders(uow: UnitOfWork, settings: Settings, now: datetime) -> int:
    """Passive cancel: the order system is asked to close orders not paid in time."""
    repo = SchedulerRepository(uow.session)
    special = settings.shops_with_overrides()
    # each policy group is queried with its own cutoff, so no shop's waiting orders starve another's
    batches = [await repo.unpaid_orders(now - settings.policy_for("").payment_timeout, except_shops=special)]
    for shop in special:
        batches.append(await repo.unpaid_orders(now - settings.policy_for(shop).payment_timeout, shops=[shop]))
    count = 0
    for order in (o for batch in batches for o in batch):
        order.close_requested = True
        uow.publish(CloseOrder(order_id=order.order_id, reason="payment timed out"),
                    key=order.order_id)
        count += 1
    return count


async def expire_parked_events(uow: UnitOfWork, settings: Settings, now: datetime) -> int:
    """Order events that never became applicable go to the DLQ with the reason; requests that
    waited in vain for their order's facts are refused with a reason the buyer can read."""
    repo = SchedulerRepository(uow.session)
    expired = await repo.expired_parked(
        facts_before=now - timedelta(seconds=settings.parked_event_wait_seconds),
        requests_before=now - timedelta(seconds=settings.parked_request_wait_seconds))
    for parked in expired:
        if parked.type == "RequestAfterSales":
            waiting = decode(parked.value)
            uow.publish(RequestRejected(
                order_id=parked.order_id, request_type=parked.type, code=parked.reason,
                message=_WAITED_IN_VAIN.get(parked.reason, "This request cannot be accepted now."),
                request_id=waiting.payload.request_id, rejected_event_id=waiting.event_id),
                key=parked.order_id, cause=waiting)
            await repo.drop_parked(parked.id)
            continue
        uow.publish(DeadLetter(
            source_topic=ORDER_EVENTS.name, partition=-1, offset=-1,
            consumer_group=settings.group("intake"), error_class="ParkedTooLong",
            reason=f"{parked.reason}; still not applicable after {settings.parked_event_wait_seconds:.0f} s",
            original_key=parked.order_id, original_value=parked.value.decode(), attempts=1,
            failed_at=datetime.now(UTC)), key=parked.order_id, topic=DLQ.name)
        await repo.drop_parked(parked.id)
    return len(expired)
