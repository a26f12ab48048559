"""Warehouse subscribers, by message type: ticket transitions that need the WMS, and its answers."""

from __future__ import annotations

from services.common.runtime import Handler, bound

from . import service
from .service import Deps


def ticket_handlers(deps: Deps) -> dict[str, Handler]:
    return {"TicketOpened": bound(deps, service.on_ticket_opened),
            "TicketStatusChanged": bound(deps, service.on_ticket_changed)}


def wms_handlers(deps: Deps) -> dict[str, Handler]:
    return {"GoodsReceived": bound(deps, service.on_goods_received),
            "AfterSalesDispatched": bound(deps, service.on_dispatched),
            "InterceptResult": bound(deps, service.on_intercept_result)}
