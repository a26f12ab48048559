"""Deadlines that fire: every waiting state of a ticket, unpaid orders, parked order events.

Each is a periodic job over due items: listed without locks, then each claimed on its own with
SKIP LOCKED and checked again, in its own transaction; an item that breaks is quarantined.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts import decode
from contracts.aftersales import RequestRejected
from contracts.ops import DeadLetter
from contracts.orders import CloseOrder
from contracts.topics import DLQ, ORDER_EVENTS
from services.common.failures import content_hash
from services.common.quarantine import DueItem, Quarantine
from services.common.routes import Deps, PeriodicJob, periodic
from services.common.tickets import save_and_announce

from .repository import SchedulerUnitOfWork

Job = PeriodicJob[SchedulerUnitOfWork]

_WAITED_IN_VAIN = {
    "ORDER_UNKNOWN": "We could not find this order. Please try again later.",
    "TYPE_NOT_ALLOWED": "This kind of after-sales is not possible for the order in its current state.",
}


def ticket_deadlines(deps: Deps) -> Job:
    """A ticket whose waiting state ran out moves on as its deadline says (close, alert, confirm)."""
    settings, clock = deps.settings, deps.clock

    async def due(uow: SchedulerUnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await uow.deadlines.overdue_tickets(clock(), skip, shops=settings.scheduler_shops or None)

    async def run(uow: SchedulerUnitOfWork, item: DueItem) -> bool:
        now = clock()
        ticket = await uow.deadlines.claim_overdue_ticket(item.id, now)
        if ticket is None:
            return False  # another scheduler has it, or it moved on
        ticket.on_deadline(now, settings.policy_for(ticket.shop_id))
        await save_and_announce(uow, ticket, None)
        return True

    return periodic("ticket_deadlines", due, run, settings.scheduler_tick_seconds)


def unpaid_orders(deps: Deps) -> Job:
    """Passive cancel: the order system is asked to close orders not paid in time."""
    settings, clock = deps.settings, deps.clock

    async def due(uow: SchedulerUnitOfWork, skip: Quarantine) -> list[DueItem]:
        repo, now = uow.unpaid, clock()
        served = settings.scheduler_shops or None
        special = [shop for shop in settings.shops_with_overrides() if served is None or shop in served]
        # each policy group is queried with its own cutoff, so no shop's waiting orders starve another's
        items = await repo.unpaid_orders(now - settings.policy_for("").payment_timeout, skip, shops=served,
                                         except_shops=special)
        for shop in special:
            items += await repo.unpaid_orders(now - settings.policy_for(shop).payment_timeout, skip, shops=[shop])
        return items

    async def run(uow: SchedulerUnitOfWork, item: DueItem) -> bool:
        order = await uow.unpaid.claim_unpaid_order(item.id)
        if order is None or order.placed_at > clock() - settings.policy_for(order.shop_id).payment_timeout:
            return False
        await uow.unpaid.close_requested(order.order_id)
        uow.publish(CloseOrder(order_id=order.order_id, reason="payment timed out"), key=order.order_id)
        return True

    return periodic("unpaid_orders", due, run, settings.scheduler_tick_seconds)


def parked_events(deps: Deps) -> Job:
    """Order events that never became applicable go to the DLQ with the reason; requests that
    waited in vain for their order's facts are refused with a reason the buyer can read."""
    settings, clock = deps.settings, deps.clock

    def cutoffs() -> tuple[datetime, datetime]:
        now = clock()
        return (now - timedelta(seconds=settings.parked_event_wait_seconds),
                now - timedelta(seconds=settings.parked_request_wait_seconds))

    async def due(uow: SchedulerUnitOfWork, skip: Quarantine) -> list[DueItem]:
        facts, requests = cutoffs()
        return await uow.parked.expired_parked(skip, facts_before=facts, requests_before=requests)

    async def run(uow: SchedulerUnitOfWork, item: DueItem) -> bool:
        repo = uow.parked
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
                failed_at=clock()), key=parked.order_id, topic=DLQ.name)
        await repo.drop_parked(parked.id)
        return True

    return periodic("parked_events", due, run, settings.scheduler_tick_seconds)
