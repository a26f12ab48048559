"""The finance refund worker: refunds through the payment channel, settlement, order close."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.topics import COMPENSATION_ACKS, REFUND_RESULTS, TICKETS
from services.common.runtime import Subscription, Worker
from services.common.settings import Settings
from services.common.tickets import command_rejected

from . import handlers, service
from .service import Deps


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))

    return Worker("finance", settings, [
        Subscription(TICKETS.name, handlers.ticket_handlers(deps), on_rejected=command_rejected),
        Subscription(REFUND_RESULTS.name, handlers.payment_handlers(deps)),
        Subscription(COMPENSATION_ACKS.name, handlers.marketing_handlers(deps)),
    ], background=[service.resend_due_refunds(deps)])
