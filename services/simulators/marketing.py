"""The marketing/account system simulator: acknowledges coupon and virtual-currency returns."""

from __future__ import annotations

from typing import Any

from contracts import Envelope
from contracts.ops import CompensationAcknowledged, ReturnCompensation
from contracts.topics import COMPENSATIONS
from services.common.runtime import Subscription, Worker
from services.common.settings import Settings
from services.common.uow import UnitOfWork


def build_worker(settings: Settings) -> Worker:
    async def on_compensation(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        msg: ReturnCompensation = envelope.payload
        uow.publish(CompensationAcknowledged(compensation_id=msg.compensation_id, order_id=msg.order_id),
                    key=msg.order_id, cause=envelope)

    return Worker("marketing", settings, [Subscription(COMPENSATIONS.name, {"ReturnCompensation": on_compensation})])
