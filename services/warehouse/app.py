"""The warehouse worker: after-sales receipts (售后入库) and shipments (售后出库) with the WMS."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.topics import TICKETS, WMS_EVENTS
from services.common.runtime import Subscription, Worker
from services.common.settings import Settings

from . import handlers
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    tickets, wms = handlers.build(Deps(settings, clock=lambda: datetime.now(UTC)))
    return Worker("warehouse", settings, [
        Subscription(TICKETS.name, tickets),
        Subscription(WMS_EVENTS.name, wms),  # hostile or impossible WMS messages: DLQ with the reason
    ])
