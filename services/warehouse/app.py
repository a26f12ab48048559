"""The warehouse worker: after-sales receipts (售后入库) and shipments (售后出库) with the WMS."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.topics import TICKETS, WMS_EVENTS
from services.common.runtime import Subscription, Worker
from services.common.settings import Settings

from . import handlers
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))
    return Worker("warehouse", settings, [
        Subscription(TICKETS.name, handlers.ticket_handlers(deps)),
        Subscription(WMS_EVENTS.name, handlers.wms_handlers(deps)),  # impossible WMS messages: DLQ
    ])
