"""The ERP sync worker."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.topics import ERP_ACKS, TICKETS
from services.common.runtime import Subscription, Worker
from services.common.settings import Settings

from . import handlers, service
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))

    return Worker("erp_sync", settings, [
        Subscription(TICKETS.name, handlers.ticket_handlers(deps)),
        Subscription(ERP_ACKS.name, handlers.ack_handlers(deps)),
    ], background=[service.resend_due(deps)])
