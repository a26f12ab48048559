"""ERP sync subscribers, by message type: approved returns/exchanges, ERP acknowledgements."""

from __future__ import annotations

from contracts import aftersales as c
from contracts.erp import ErpOrderAcknowledged, ErpOrderCancelled
from contracts.topics import ERP_ACKS, TICKETS
from services.common.routes import Subscription, route

from . import service
from .repository import ErpUnitOfWork


def subscriptions() -> list[Subscription[ErpUnitOfWork]]:
    return [
        Subscription(TICKETS, [route(c.TicketStatusChanged, service.on_ticket_changed)]),
        Subscription(ERP_ACKS, [route(ErpOrderAcknowledged, service.on_ack),
                                route(ErpOrderCancelled, service.on_cancelled)]),
    ]
