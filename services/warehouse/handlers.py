"""Warehouse subscribers: ticket transitions that need the WMS, and the WMS's answers."""

from __future__ import annotations

from typing import Any

from contracts import Envelope
from services.common.uow import UnitOfWork

from . import service
from .service import Deps


def build(deps: Deps) -> tuple[dict[str, Any], dict[str, Any]]:
    async def on_ticket_opened(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_ticket_opened(envelope, uow, deps)

    async def on_ticket_status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_ticket_changed(envelope, uow, deps)

    async def on_goods_received(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_goods_received(envelope, uow, deps)

    async def on_after_sales_dispatched(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_dispatched(envelope, uow, deps)

    async def on_intercept_result(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_intercept_result(envelope, uow, deps)

    return ({"TicketOpened": on_ticket_opened, "TicketStatusChanged": on_ticket_status_changed},
            {"GoodsReceived": on_goods_received, "AfterSalesDispatched": on_after_sales_dispatched,
             "InterceptResult": on_intercept_result})
