"""The ERP sync worker."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.topics import ERP_ACKS, TICKETS
from services.common.runtime import Subscription, Worker, periodic
from services.common.settings import Settings
from services.common.uow import UnitOfWork

from . import handlers, service
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))

    async def resend_due_erp_orders(uow: UnitOfWork) -> int:
        return await service.resend_due(uow, deps)

    return Worker("erp_sync", settings, [
        Subscription(TICKETS.name, handlers.ticket_handlers(deps)),
        Subscription(ERP_ACKS.name, handlers.ack_handlers(deps)),
    ], background=[periodic(resend_due_erp_orders, settings.scheduler_tick_seconds)])
