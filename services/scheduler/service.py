"""Deadlines that fire: every waiting state of a ticket, unpaid orders, parked order events.

Each is a periodic job over due items: listed without locks, then each claimed on its own with
SKIP LOCKED and checked again, in its own transaction; an item that breaks is quarantined.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from contracts import decode
from contracts.aftersales import RequestRejected
from contracts.ops import DeadLetter
from contracts.orders import CloseOrder
from contracts.topics import DLQ, ORDER_EVENTS
from services.common.failures import content_hash
from services.common.quarantine import DueItem, Quarantine
from services.common.runtime import PeriodicJob, periodic
from services.common.settings import Settings
from services.common.tickets import save_and_announce
from services.common.uow import UnitOfWork

from .repository import SchedulerRepository

Clock = Callable[[], datetime]

_WAITED_IN_VAIN = {
    "ORDER_UNKNOWN": "We could not find this order. Please try again later.",
    "TYPE_NOT_ALLOWED": "This kind of after-sales is not possible for the order in its current state.",
}


def ticket_deadlines(settings: Settings, clock: Clock) -> PeriodicJob:
    """A ticket whose waiting state ran out moves on as its deadline says (close, alert, confirm)."""
    async def due(uow: UnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await SchedulerRepository(uow.session).overdue_tickets(clock(), skip)

    async def run(uow: UnitOfWork, item: DueItem) -> bool:
        now = clock()
        ticket = await SchedulerRepository(uow.session).claim_overdue_ticket(item.id, now)
        if ticket is None:
            return False  # another scheduler has it, or it moved on
        ticket.on_deadline(now, settings.policy_for(ticket.shop_id))
        await save_and_announce(uow, ticket, None)
        return True

    return periodic("ticket_deadlines", due, run, settings.scheduler_tick_seconds)


def unpaid_orders(settings: Settings, clock: Clock) -> PeriodicJob:
    """Passive cancel: the order system is asked to close orders not paid in time."""
    async def due(uow: UnitOfWork, skip: Quarantine) -> list[DueItem]:
        repo, now = SchedulerRepository(uow.session), clock()
        special = settings.shops_with_overrides()
        # each policy group is queried with its own cutoff, so no shop's waiting orders starve another's
        items = await repo.unpaid_orders(now - settings.policy_for("").payment_timeout, skip, except_shops=special)
        for shop in special:
            items += await repo.unpaid_orders(now - settings.policy_for(shop).payment_timeout, skip, shops=[shop])
        return items

    async def run(uow: UnitOfWork, item: DueItem) -> bool:
        order = await SchedulerRepository(uow.session).claim_unpaid_order(item.id)
        if order is None or order.placed_at > clock() - settings.policy_for(order.shop_id).payment_timeout:
            return False
        order.close_requested = True
        uow.publish(CloseOrder(order_id=order.order_id, reason="payment timed out"), key=order.order_id)
        return True

    return periodic("unpaid_orders", due, run, settings.scheduler_tick_seconds)


def parked_events(settings: Settings, clock: Clock) -> PeriodicJob:
    """Order events that never became applicable go to the DLQ with the reason; requests that
    waited in vain for their order's facts are refused with a reason the buyer can read."""
    def cutoffs() -> tuple[datetime, datetime]:
        now = clock()
        return (now - timedelta(seconds=settings.parked_event_wait_seconds),
                now - timedelta(seconds=settings.parked_request_wait_seconds))

    async def due(uow: UnitOfWork, skip: Quarantine) -> list[DueItem]:
        facts, requests = cutoffs()
        return await SchedulerRepository(uow.session).expired_parked(
            skip, facts_before=facts, requests_before=requests)

    async def run(uow: UnitOfWork, item: DueItem) -> bool:
        repo = SchedulerRepository(uow.session)
        facts, requests = cutoffs()
        parked = await repo.claim_expired_parked(int(item.id), facts_before=facts, requests_before=requests)
        if parked is None:
            return False
        if parked.type == "RequestAfterSales":
            waiting = decode(parked.value)
            uow.publish(RequestRejected(
                order_id=parked.order_id, request_type=parked.type, code=parked.reason,
                message=_WAITED_IN_VAIN.get(parked.reason, "This request cannot be accepted now."),
                request_id=waiting.payload.request_id, rejected_event_id=waiting.event_id),
                key=parked.order_id, cause=waiting)
        else:
            uow.publish(DeadLetter(
                source_topic=ORDER_EVENTS.name, partition=-1, offset=-1,
                consumer_group=settings.group("intake"), error_class="ParkedTooLong",
                reason_code="PARKED_TOO_LONG",
                reason=f"{parked.reason}; still not applicable after {settings.parked_event_wait_seconds:.0f} s",
                original_key=parked.order_id, original_value=parked.value.decode(), attempts=1,
                original_size=len(parked.value), original_sha256=content_hash(parked.value).hex(),
                original_event_id=parked.event_id, original_type=parked.type,
                failed_at=datetime.now(UTC)), key=parked.order_id, topic=DLQ.name)
        await repo.drop_parked(parked.id)
        return True

    return periodic("parked_events", due, run, settings.scheduler_tick_seconds)
