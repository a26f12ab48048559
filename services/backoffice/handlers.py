"""Back-office subscribers: the workers' answers to the decisions it submitted."""

from __future__ import annotations

from contracts import aftersales as c
from contracts.monitoring import WorkItemChanged
from contracts.topics import REJECTIONS, TICKETS, WORK_ITEMS
from services.common.routes import Subscription, route

from . import service
from .repository import BackOfficeUnitOfWork


def subscriptions() -> list[Subscription[BackOfficeUnitOfWork]]:
    return [
        Subscription(TICKETS, [route(c.TicketStatusChanged, service.on_ticket_changed)]),
        Subscription(REJECTIONS, [route(c.CommandRejected, service.on_command_rejected)]),
        Subscription(WORK_ITEMS, [route(WorkItemChanged, service.on_work_item_changed)]),
    ]
