"""Review subscribers, by message type: new tickets, back-office decisions, intercept results."""

from __future__ import annotations

from services.common.runtime import Handler, bound

from . import service
from .service import Deps

DECISION_TYPES = ("ApproveTicket", "RejectTicket", "AdjustRefundAmount", "SetRefundFlags",
                  "ResolveIntervention", "ApproveRefund", "SendBackRefund", "ApproveLargeRefund",
                  "RetryRefund")


def ticket_handlers(deps: Deps) -> dict[str, Handler]:
    return {"TicketOpened": bound(deps, service.on_ticket_opened)}


def decision_handlers(deps: Deps) -> dict[str, Handler]:
    return {t: bound(deps, service.decide) for t in DECISION_TYPES}


def wms_handlers(deps: Deps) -> dict[str, Handler]:
    return {"InterceptResult": bound(deps, service.on_intercept_result)}
