"""The scheduler: a worker with no subscriptions whose loops fire deadlines through the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from services.common.runtime import Worker, periodic
from services.common.settings import Settings
from services.common.uow import UnitOfWork

from . import service


def build_worker(settings: Settings) -> Worker:
    async def ticket_deadlines(uow: UnitOfWork) -> int:
        return await service.fire_ticket_deadlines(uow, settings, datetime.now(UTC))

    async def unpaid_orders(uow: UnitOfWork) -> int:
        return await service.cancel_unpaid_orders(uow, settings, datetime.now(UTC))

    async def parked_events(uow: UnitOfWork) -> int:
        return await service.expire_parked_events(uow, settings, datetime.now(UTC))

    tick = settings.scheduler_tick_seconds
    return Worker("scheduler", settings, [], background=[
        periodic(ticket_deadlines, tick), periodic(unpaid_orders, tick), periodic(parked_events, tick)])
