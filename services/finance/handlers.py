"""Finance subscribers: tickets entering REFUNDING, payment channel answers, marketing acks."""

from __future__ import annotations

from typing import Any

from contracts import Envelope
from services.common.uow import UnitOfWork

from . import service
from .service import Deps


def build(deps: Deps) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    async def on_ticket_status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_ticket_changed(envelope, uow, deps)

    async def on_refund_succeeded(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_refund_succeeded(envelope, uow, deps)

    async def on_refund_failed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_refund_failed(envelope, uow, deps)

    async def on_compensation_acknowledged(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_compensation_acknowledged(envelope, uow, deps)

    return ({"TicketStatusChanged": on_ticket_status_changed},
            {"RefundSucceeded": on_refund_succeeded, "RefundFailed": on_refund_failed},
            {"CompensationAcknowledged": on_compensation_acknowledged})
