"""The ERP simulator. Scenario ``sim:erp:<shop_id>``: ``ok``; ``fail:N`` (rejects the first N
attempts of each order, then accepts); ``never`` (never answers). Cancels are confirmed (unless
``never``), also for an order it never had."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from contracts import Envelope
from contracts.erp import CancelErpOrder, ErpOrderAcknowledged, ErpOrderCancelled, ErpOrderRequested
from contracts.topics import ERP_OUTBOUND
from services.common.routes import Deps, Subscription, route
from services.common.runtime import Worker
from services.common.settings import Settings
from services.common.uow import SqlUnitOfWork

from . import scenarios


def build_worker(settings: Settings) -> Worker[SqlUnitOfWork]:
    redis = Redis.from_url(settings.redis_url)

    async def on_erp_order(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        cmd: ErpOrderRequested = envelope.payload
        scenario = await scenarios.get(redis, "erp", cmd.shop_id)
        calls = await scenarios.bump(redis, "erp", str(cmd.erp_order_id))
        if scenario == "never":
            return
        if scenario.startswith("fail:") and calls <= int(scenario.split(":", 1)[1]):
            uow.publish(ErpOrderAcknowledged(erp_order_id=cmd.erp_order_id, order_id=cmd.order_id,
                                             accepted=False, error="ERP busy (simulated)"),
                        key=cmd.order_id, cause=envelope)
            return
        uow.publish(ErpOrderAcknowledged(erp_order_id=cmd.erp_order_id, order_id=cmd.order_id, accepted=True,
                                         erp_ref=f"ERP-{cmd.erp_order_id.hex[:10]}"),
                    key=cmd.order_id, cause=envelope)

    async def on_cancel(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        cmd: CancelErpOrder = envelope.payload
        if await scenarios.get(redis, "erp", cmd.shop_id) == "never":
            return
        uow.publish(ErpOrderCancelled(erp_order_id=cmd.erp_order_id, order_id=cmd.order_id),
                    key=cmd.order_id, cause=envelope)

    return Worker("erp", settings, [Subscription(ERP_OUTBOUND, [
        route(ErpOrderRequested, on_erp_order), route(CancelErpOrder, on_cancel)])], unit_of_work=SqlUnitOfWork)
