"""Settlement subscribers: order facts, ticket ends and finance's settled refunds."""

from __future__ import annotations

from contracts import aftersales as c
from contracts import orders as o
from contracts.ops import SettlementAdjusted
from contracts.topics import ORDER_EVENTS, SETTLEMENT, TICKETS
from services.common.routes import Subscription, route

from . import service
from .repository import SettlementUnitOfWork


def subscriptions() -> list[Subscription[SettlementUnitOfWork]]:
    return [
        Subscription(ORDER_EVENTS, [route(o.OrderPlaced, service.order_placed), route(o.OrderPaid, service.order_paid),
                                    route(o.OrderShipped, service.order_shipped),
                                    route(o.OrderCompleted, service.order_completed),
                                    route(o.OrderClosed, service.order_closed)]),
        Subscription(TICKETS, [route(c.TicketOpened, service.ticket_opened, only=service.holds_the_order),
                               route(c.TicketStatusChanged, service.ticket_changed, only=service.ends)]),
        Subscription(SETTLEMENT, [route(SettlementAdjusted, service.settlement_adjusted)]),
    ]
