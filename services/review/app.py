"""The review worker: ops review, manager and finance approval, automatic approval rules."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.topics import DECISIONS, TICKETS, WMS_EVENTS
from services.common.runtime import Subscription, Worker
from services.common.settings import Settings
from services.common.tickets import command_rejected

from . import handlers
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))
    return Worker("review", settings, [
        Subscription(TICKETS.name, handlers.ticket_handlers(deps), on_rejected=command_rejected),
        Subscription(DECISIONS.name, handlers.decision_handlers(deps), on_rejected=command_rejected),
        Subscription(WMS_EVENTS.name, handlers.wms_handlers(deps)),
    ])
