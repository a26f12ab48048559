"""ERP sync subscribers, by message type: approved returns/exchanges, ERP acknowledgements."""

from __future__ import annotations

from services.common.runtime import Handler, bound

from . import service
from .service import Deps


def ticket_handlers(deps: Deps) -> dict[str, Handler]:
    return {"TicketStatusChanged": bound(deps, service.on_ticket_changed)}


def ack_handlers(deps: Deps) -> dict[str, Handler]:
    return {"ErpOrderAcknowledged": bound(deps, service.on_ack)}
