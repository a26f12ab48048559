"""The upstream order system simulator: closes orders when asked (publishes OrderClosed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts import Envelope
from contracts.orders import CloseOrder, OrderClosed
from contracts.topics import ORDER_COMMANDS
from services.common.runtime import Subscription, Worker
from services.common.settings import Settings
from services.common.uow import UnitOfWork


def build_worker(settings: Settings) -> Worker:
    async def on_close_order(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        cmd: CloseOrder = envelope.payload
        uow.publish(OrderClosed(order_id=cmd.order_id, closed_at=datetime.now(UTC), reason=cmd.reason),
                    key=cmd.order_id, cause=envelope)

    return Worker("order-system", settings, [Subscription(ORDER_COMMANDS.name, {"CloseOrder": on_close_order})])
