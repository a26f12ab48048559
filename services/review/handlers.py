"""Review subscribers: new tickets, back-office decisions, warehouse intercept results."""

from __future__ import annotations

from typing import Any

from contracts import Envelope
from services.common.uow import UnitOfWork

from . import service
from .service import Deps

DECISION_TYPES = ("ApproveTicket", "RejectTicket", "AdjustRefundAmount", "SetRefundFlags",
                  "ResolveIntervention", "ApproveRefund", "SendBackRefund", "ApproveLargeRefund",
                  "RetryRefund")


def build(deps: Deps) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    async def on_ticket_opened(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_ticket_opened(envelope, uow, deps)

    async def on_decision(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.decide(envelope, uow, deps)

    async def on_intercept_result(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await service.on_intercept_result(envelope, uow, deps)

    return ({"TicketOpened": on_ticket_opened},
            {t: on_decision for t in DECISION_TYPES},
            {"InterceptResult": on_intercept_result})
