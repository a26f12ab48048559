"""Intake subscribers, by message type: order facts and the buyer's requests."""

from __future__ import annotations

from contracts import aftersales as c
from contracts import orders as o
from contracts.topics import ORDER_EVENTS, REQUESTS
from services.common.routes import Subscription, route

from . import service
from .repository import IntakeUnitOfWork


def subscriptions() -> list[Subscription[IntakeUnitOfWork]]:
    return [
        Subscription(ORDER_EVENTS, [route(o.OrderPlaced, service.apply_order_event),
                                    route(o.OrderPaid, service.apply_order_event),
                                    route(o.OrderShipped, service.apply_order_event),
                                    route(o.OrderCompleted, service.apply_order_event),
                                    route(o.OrderClosed, service.apply_order_event)]),
        Subscription(REQUESTS, [route(c.RequestAfterSales, service.request_after_sales),
                                route(c.WithdrawTicket, service.withdraw),
                                route(c.SubmitReturnShipment, service.submit_return_shipment),
                                route(c.ConfirmExchangeReceived, service.confirm_exchange_received)],
                     on_rejected=service.request_rejected),
    ]
