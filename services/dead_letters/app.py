"""The dead-letter worker: records what every worker dead-lettered, for ops tooling and counts."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.topics import DLQ
from services.common.runtime import Subscription, Worker
from services.common.settings import Settings

from . import handlers, service
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))
    return Worker("dead_letters", settings, [Subscription(DLQ.name, handlers.dlq_handlers(deps))],
                  background=[service.summarize(deps)])
