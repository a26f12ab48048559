"""The finance refund worker: refunds through the payment channel, settlement, order close."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from contracts.topics import COMPENSATION_ACKS, REFUND_RESULTS, TICKETS
from services.common.runtime import Context, Subscription, Worker
from services.common.settings import Settings
from services.common.tickets import command_rejected

from . import handlers, service
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))
    tickets, results, acks = handlers.build(deps)

    async def refund_retry_loop(ctx: Context) -> None:
        """The durable retry schedule: refunds whose answer is overdue are resent, never blocking a partition."""
        while True:
            async with ctx.uow() as uow:
                resent = await service.resend_due_refunds(uow, deps)
                await uow.commit()
            if resent:
                ctx.relay.wake()
            await asyncio.sleep(settings.scheduler_tick_seconds)

    return Worker("finance", settings, [
        Subscription(TICKETS.name, tickets, on_rejected=command_rejected),
        Subscription(REFUND_RESULTS.name, results),
        Subscription(COMPENSATION_ACKS.name, acks),
    ], background=[refund_retry_loop])
