"""The ERP sync worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from contracts.topics import ERP_ACKS, TICKETS
from services.common.runtime import Context, Subscription, Worker
from services.common.settings import Settings

from . import handlers, service
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))
    tickets, acks = handlers.build(deps)

    async def erp_retry_loop(ctx: Context) -> None:
        while True:
            async with ctx.uow() as uow:
                sent = await service.resend_due(uow, deps)
                await uow.commit()
            if sent:
                ctx.relay.wake()
            await asyncio.sleep(settings.scheduler_tick_seconds)

    return Worker("erp_sync", settings, [
        Subscription(TICKETS.name, tickets),
        Subscription(ERP_ACKS.name, acks),
    ], background=[erp_retry_loop])
