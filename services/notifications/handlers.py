"""Notifications subscribers: every ticket opened and moved."""

from __future__ import annotations

from contracts import aftersales as c
from contracts.topics import TICKETS
from services.common.routes import Subscription, route

from . import service
from .repository import NotificationsUnitOfWork


def subscriptions() -> list[Subscription[NotificationsUnitOfWork]]:
    return [Subscription(TICKETS, [route(c.TicketOpened, service.ticket_opened),
                                   route(c.TicketStatusChanged, service.ticket_changed)])]
