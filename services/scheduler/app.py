"""The scheduler: a worker with no subscriptions whose loop fires deadlines through the outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.common.logging import get_logger
from services.common.runtime import Context, Worker
from services.common.settings import Settings

from . import service

log = get_logger("scheduler")


def build_worker(settings: Settings) -> Worker:
    async def tick_loop(ctx: Context) -> None:
        while True:
            fired = 0
            for job in (service.fire_ticket_deadlines, service.cancel_unpaid_orders,
                        service.expire_parked_events):
                async with ctx.uow() as uow:
                    fired += await job(uow, settings, datetime.now(UTC))
                    await uow.commit()
            if fired:
                ctx.relay.wake()
                log.info("deadlines_fired", count=fired)
            await asyncio.sleep(settings.scheduler_tick_seconds)

    return Worker("scheduler", settings, [], background=[tick_loop])
