"""Intake subscribers, by message type: order facts, the buyer's requests, admins' reason changes."""

from __future__ import annotations

from contracts import admin as ad
from contracts import aftersales as c
from contracts import orders as o
from contracts.topics import ADMIN_COMMANDS, ORDER_EVENTS, REQUESTS
from services.common.routes import Subscription, route
from services.common.tickets import command_rejected

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
                                route(c.RefuseDelivery, service.refuse_delivery),
                                route(c.ConfirmExchangeReceived, service.confirm_exchange_received),
                                route(c.QuoteAfterSales, service.quote_after_sales)],
                     on_rejected=service.request_rejected),
        Subscription(ADMIN_COMMANDS, [route(ad.SaveReason, service.save_reason),
                                      route(ad.SetReasonVisible, service.set_reason_visible),
                                      route(ad.DeleteReason, service.delete_reason),
                                      route(ad.ReorderReasons, service.reorder_reasons)],
                     on_rejected=command_rejected),
    ]
