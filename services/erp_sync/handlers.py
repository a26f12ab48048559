"""ERP sync subscribers: approved returns/exchanges, ERP acknowledgements."""

from __future__ import annotations

from typing import Any

from contracts import Envelope
from services.common.uow import UnitOfWork

from . import service
from .service import Deps


def build(deps: Deps) -> tuple[dict[str, Any], dict[str, Any]]:
    async def on_ticket_status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_ticket_changed(envelope, uow, deps)

    async def on_erp_order_acknowledged(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_ack(envelope, uow, deps)

    return ({"TicketStatusChanged": on_ticket_status_changed},
            {"ErpOrderAcknowledged": on_erp_order_acknowledged})
