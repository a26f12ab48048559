"""Finance subscribers, by message type: tickets entering REFUNDING, channel answers, marketing acks."""

from __future__ import annotations

from services.common.runtime import Handler, bound

from . import service
from .service import Deps


def ticket_handlers(deps: Deps) -> dict[str, Handler]:
    return {"TicketStatusChanged": bound(deps, service.on_ticket_changed)}


def payment_handlers(deps: Deps) -> dict[str, Handler]:
    return {"RefundSucceeded": bound(deps, service.on_refund_succeeded),
            "RefundFailed": bound(deps, service.on_refund_failed)}


def marketing_handlers(deps: Deps) -> dict[str, Handler]:
    return {"CompensationAcknowledged": bound(deps, service.on_compensation_acknowledged)}
