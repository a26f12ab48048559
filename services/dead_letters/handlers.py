"""Dead-letter subscribers: every DeadLetter on the DLQ topic is recorded once."""

from __future__ import annotations

from contracts.ops import DeadLetter
from contracts.topics import DLQ
from services.common.routes import Subscription, route

from . import service
from .repository import DeadLetterUnitOfWork


def subscriptions() -> list[Subscription[DeadLetterUnitOfWork]]:
    return [Subscription(DLQ, [route(DeadLetter, service.record)])]
