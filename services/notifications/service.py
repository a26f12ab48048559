"""Notifications use cases: each buyer-visible ticket change becomes one BuyerNotification
(its id derived from the change's event id, so a redelivery tells the buyer nothing twice), and
a periodic job reminds buyers of deadlines they must meet (``domain.notifications``)."""

from __future__ import annotations

import uuid
from typing import Any

from contracts import Envelope
from contracts import aftersales as c
from contracts import notifications as n
from services.common.quarantine import DueItem, Quarantine
from services.common.routes import Deps, PeriodicJob, periodic
from services.domain import notifications as rules
from services.domain.model import AfterSalesType

from .repository import BuyerDeadline, NotificationsUnitOfWork


async def ticket_opened(envelope: Envelope[c.TicketOpened], uow: NotificationsUnitOfWork, deps: Deps) -> None:
    view = envelope.payload.ticket
    notice = rules.opened(AfterSalesType(view.type.value), view.refund_total.cents + view.shipping_refund.cents,
                          view.refund_total.currency)
    _tell(uow, view, notice, envelope)
    await _track(uow, deps, view, str(view.status))


async def ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: NotificationsUnitOfWork,
                         deps: Deps) -> None:
    event = envelope.payload
    view = event.ticket
    notice = rules.on_move(rules.Move(
        type=AfterSalesType(view.type.value), from_status=str(event.from_status), to_status=str(event.to_status),
        actor_role=event.actor.role.value, reason=event.reason,
        refund_cents=view.refund_total.cents + view.shipping_refund.cents, currency=view.refund_total.currency,
        deadline_at=view.deadline_at,
        return_address=view.return_address.model_dump() if view.return_address else None, action=event.action))
    if notice is not None:
        _tell(uow, view, notice, envelope)
    await _track(uow, deps, view, str(event.to_status))


def _tell(uow: NotificationsUnitOfWork, view: c.TicketView, notice: rules.Notice, cause: Envelope[Any]) -> None:
    uow.publish(n.BuyerNotification(
        notification_id=uuid.uuid5(cause.event_id, "buyer-notification"), ticket_id=view.ticket_id,
        ticket_no=view.ticket_no, order_id=view.order_id, buyer_id=view.buyer_id,
        template=n.NotificationTemplate(notice.template), params=notice.params, occurred_at=cause.occurred_at),
        key=view.order_id, cause=cause)


async def _track(uow: NotificationsUnitOfWork, deps: Deps, view: c.TicketView, status: str) -> None:
    """Keeps the ticket's buyer deadline (or forgets it once the ticket no longer waits on the buyer)."""
    found = await uow.deadlines.get(view.ticket_id, view.order_id)
    deadline_at = view.deadline_at
    if status not in rules.BUYER_DEADLINES or deadline_at is None:
        if found is not None:
            await uow.deadlines.remove(view.ticket_id)
        return
    if found is not None and found.status == status and found.deadline_at == deadline_at:
        return  # the same deadline again: its reminder (sent or not) stands
    before = deps.settings.policy_for(view.shop_id).buyer_reminder_before
    await uow.deadlines.save(BuyerDeadline(view.ticket_id, view.ticket_no, view.order_id, view.buyer_id, status,
                                           deadline_at, rules.remind_at(deadline_at, before)))


def remind(deps: Deps) -> PeriodicJob[NotificationsUnitOfWork]:
    """Buyers whose deadline is near are reminded once (a moved deadline gets its own reminder)."""
    async def due(uow: NotificationsUnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await uow.deadlines.reminders_due(deps.clock(), skip)

    async def run(uow: NotificationsUnitOfWork, item: DueItem) -> bool:
        deadline = await uow.deadlines.get(item.id, item.order_id)
        now = deps.clock()
        if deadline is None:
            return False
        template = rules.reminder_due(deadline.status, deadline.deadline_at, deadline.remind_at,
                                      deadline.reminded_at is not None, now)
        if template is None or not await uow.deadlines.mark_reminded(deadline.ticket_id, deadline.deadline_at, now):
            return False
        uow.publish(n.BuyerNotification(
            notification_id=uuid.uuid5(uuid.NAMESPACE_URL, f"reminder/{deadline.ticket_id}/{deadline.deadline_at}"),
            ticket_id=deadline.ticket_id, ticket_no=deadline.ticket_no, order_id=deadline.order_id,
            buyer_id=deadline.buyer_id, template=n.NotificationTemplate(template),
            params={"deadline": deadline.deadline_at.isoformat()}, occurred_at=now), key=deadline.order_id)
        return True

    return periodic("buyer_reminders", due, run, deps.settings.scheduler_tick_seconds)
