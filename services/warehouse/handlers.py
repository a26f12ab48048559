"""Warehouse subscribers, by message type: ticket transitions that need the WMS, and its answers."""

from __future__ import annotations

from contracts import aftersales as c
from contracts import warehouse as w
from contracts.topics import TICKETS, WMS_EVENTS
from services.common.routes import Subscription, route

from . import service
from .repository import WarehouseUnitOfWork


def subscriptions() -> list[Subscription[WarehouseUnitOfWork]]:
    return [
        Subscription(TICKETS, [route(c.TicketOpened, service.on_ticket_opened, only=service.intercepted),
                               route(c.TicketStatusChanged, service.on_ticket_changed, only=service.needs_the_wms)]),
        Subscription(WMS_EVENTS, [route(w.GoodsReceived, service.on_goods_received),  # impossible ones: DLQ
                                  route(w.AfterSalesDispatched, service.on_dispatched),
                                  route(w.InterceptResult, service.on_intercept_result),
                                  route(w.RepairProgress, service.on_repair_progress)]),
    ]
