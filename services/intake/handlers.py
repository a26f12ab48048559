"""Intake subscribers: each parses its message (done by the runtime) and calls one use case."""

from __future__ import annotations

from typing import Any

from contracts import Envelope
from services.common.uow import UnitOfWork

from . import service
from .service import Deps


def order_handlers(deps: Deps) -> dict[str, Any]:
    async def on_order_event(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.apply_order_event(envelope, uow, deps)

    return {t: on_order_event for t in service.ORDER_FACTS}


def request_handlers(deps: Deps) -> dict[str, Any]:
    async def on_request_after_sales(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.request_after_sales(envelope, uow, deps)

    async def on_withdraw_ticket(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.withdraw(envelope, uow, deps)

    async def on_submit_return_shipment(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.submit_return_shipment(envelope, uow, deps)

    async def on_confirm_exchange_received(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.confirm_exchange_received(envelope, uow, deps)

    return {
        "RequestAfterSales": on_request_after_sales,
        "WithdrawTicket": on_withdraw_ticket,
        "SubmitReturnShipment": on_submit_return_shipment,
        "ConfirmExchangeReceived": on_confirm_exchange_received,
    }
