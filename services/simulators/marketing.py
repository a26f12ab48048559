"""The marketing/account system simulator: acknowledges coupon and virtual-currency returns."""

from __future__ import annotations

from typing import Any

from contracts import Envelope
from contracts.ops import CompensationAcknowledged, ReturnCompensation
from contracts.topics import COMPENSATIONS
from services.common.routes import Deps, Subscription, route
from services.common.runtime import Worker
from services.common.settings import Settings
from services.common.uow import SqlUnitOfWork


def build_worker(settings: Settings) -> Worker[SqlUnitOfWork]:
    async def on_compensation(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        msg: ReturnCompensation = envelope.payload
        uow.publish(CompensationAcknowledged(compensation_id=msg.compensation_id, order_id=msg.order_id),
                    key=msg.order_id, cause=envelope)

    return Worker("marketing", settings, [Subscription(COMPENSATIONS, [route(ReturnCompensation, on_compensation)])],
                  unit_of_work=SqlUnitOfWork, prompt=False)
