"""Intake subscribers, by message type: order facts and the buyer's requests."""

from __future__ import annotations

from services.common.runtime import Handler, bound

from . import service
from .service import Deps


def order_handlers(deps: Deps) -> dict[str, Handler]:
    return {t: bound(deps, service.apply_order_event) for t in service.ORDER_FACTS}


def request_handlers(deps: Deps) -> dict[str, Handler]:
    return {
        "RequestAfterSales": bound(deps, service.request_after_sales),
        "WithdrawTicket": bound(deps, service.withdraw),
        "SubmitReturnShipment": bound(deps, service.submit_return_shipment),
        "ConfirmExchangeReceived": bound(deps, service.confirm_exchange_received),
    }
