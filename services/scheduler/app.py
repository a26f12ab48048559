"""The scheduler: a worker with no subscriptions whose loops fire deadlines through the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from services.common.runtime import Worker
from services.common.settings import Settings

from . import service


def build_worker(settings: Settings) -> Worker:
    def clock() -> datetime:
        return datetime.now(UTC)

    return Worker("scheduler", settings, [], background=[
        service.ticket_deadlines(settings, clock), service.unpaid_orders(settings, clock),
        service.parked_events(settings, clock)])
