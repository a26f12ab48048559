"""Finance subscribers, by message type: what orders paid, tickets entering REFUNDING, channel
answers, marketing acks."""

from __future__ import annotations

from contracts import aftersales as c
from contracts.ops import CompensationAcknowledged
from contracts.orders import OrderPlaced
from contracts.payments import RefundFailed, RefundSucceeded
from contracts.topics import COMPENSATION_ACKS, ORDER_EVENTS, REFUND_RESULTS, TICKETS
from services.common.routes import Subscription, route
from services.common.tickets import command_rejected

from . import service
from .repository import FinanceUnitOfWork


def subscriptions() -> list[Subscription[FinanceUnitOfWork]]:
    return [
        Subscription(ORDER_EVENTS, [route(OrderPlaced, service.on_order_placed)]),
        Subscription(TICKETS, [route(c.TicketStatusChanged, service.on_ticket_changed, only=service.starts_money)],
                     on_rejected=command_rejected),
        Subscription(REFUND_RESULTS, [route(RefundSucceeded, service.on_refund_succeeded),
                                      route(RefundFailed, service.on_refund_failed)]),
        Subscription(COMPENSATION_ACKS, [route(CompensationAcknowledged, service.on_compensation_acknowledged)]),
    ]
