"""ERP sync subscribers, by message type: approved returns/exchanges, ERP acknowledgements."""

from __future__ import annotations

from contracts import aftersales as c
from contracts.admin import RestartErpOrder
from contracts.erp import ErpOrderAcknowledged, ErpOrderCancelled
from contracts.topics import ADMIN_COMMANDS, ERP_ACKS, TICKETS
from services.common.routes import Subscription, route
from services.common.tickets import command_rejected

from . import service
from .repository import ErpUnitOfWork


def subscriptions() -> list[Subscription[ErpUnitOfWork]]:
    return [
        Subscription(TICKETS, [route(c.TicketStatusChanged, service.on_ticket_changed, only=service.concerns_the_erp)]),
        Subscription(ERP_ACKS, [route(ErpOrderAcknowledged, service.on_ack),
                                route(ErpOrderCancelled, service.on_cancelled)]),
        Subscription(ADMIN_COMMANDS, [route(RestartErpOrder, service.restart)], on_rejected=command_rejected),
    ]
