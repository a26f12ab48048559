"""The WMS simulator: receives and inspects returns, dispatches after-sales shipments, answers
intercepts. Scenario ``sim:wms:<order_id>``: ``pass`` (default), an inspection result such as
``WRONG_ITEM`` / ``DAMAGED_BY_BUYER`` / ``FEWER_UNITS``, or ``already_dispatched`` for
intercepts, or ``hold`` (no answer).
``AFTERSALES_SIM_WMS_MISMATCH_RATE`` makes a share of inspections fail at random."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from contracts import Envelope
from contracts import warehouse as w
from contracts.topics import WMS_COMMANDS
from services.common.routes import Deps, Subscription, route
from services.common.runtime import Worker
from services.common.settings import Settings
from services.common.uow import SqlUnitOfWork

from . import scenarios


def build_worker(settings: Settings) -> Worker[SqlUnitOfWork]:
    redis = Redis.from_url(settings.redis_url)
    rng = random.Random()

    async def on_expect_return(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        cmd: w.ExpectReturn = envelope.payload
        scenario = await scenarios.get(redis, "wms", cmd.order_id, "pass")
        if scenario == "hold":
            return  # the goods are 'still on their way': someone else will answer
        if scenario == "pass" and rng.random() < settings.sim_wms_mismatch_rate:
            scenario = "DAMAGED_BY_BUYER"
        # an inspection scenario names the outcome; any other (a repair's) receives the goods as passed
        inspection = w.Inspection(scenario) if scenario in w.Inspection.__members__ else w.Inspection.PASSED
        lines = list(cmd.lines)
        if inspection == w.Inspection.FEWER_UNITS:
            lines = [w.SkuQuantity(sku=ln.sku, quantity=max(ln.quantity - 1, 0)) for ln in lines]
        uow.publish(w.GoodsReceived(
            receipt_id=uuid.uuid4(), ticket_id=cmd.ticket_id, order_id=cmd.order_id,
            receipt_type=cmd.receipt_type, lines=lines, inspection=inspection, operator="wh-op-7",
            received_at=datetime.now(UTC), note=f"waybill {cmd.waybill}"), key=cmd.order_id, cause=envelope)

    async def on_ship(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        cmd: w.ShipAfterSales | w.ReturnGoodsToBuyer = envelope.payload
        if isinstance(cmd, w.ShipAfterSales) and cmd.shipment_type == w.ShipmentType.REPAIR_SHIPMENT:
            # the service centre reports its steps before the repaired item leaves
            steps = ((w.RepairStep.DIAGNOSED, "worn contact replaced"), (w.RepairStep.REPAIRED, "tested for 30 min"))
            if await scenarios.get(redis, "wms", cmd.order_id, "pass") == "cannot_repair":
                steps = ((w.RepairStep.DIAGNOSED, "board burnt"), (w.RepairStep.CANNOT_REPAIR, "no spare board"))
            for step, note in steps:
                uow.publish(w.RepairProgress(ticket_id=cmd.ticket_id, order_id=cmd.order_id, step=step, note=note,
                                             operator="svc-op-2", at=datetime.now(UTC)), key=cmd.order_id,
                            cause=envelope)
            if steps[-1][0] == w.RepairStep.CANNOT_REPAIR:
                return  # nothing to send back yet: a person decides with the buyer
        uow.publish(w.AfterSalesDispatched(
            shipment_id=cmd.shipment_id, ticket_id=cmd.ticket_id, order_id=cmd.order_id, carrier="SF",
            waybill=f"SF{uuid.uuid4().int % 10**12:012d}", operator="wh-op-3",
            dispatched_at=datetime.now(UTC)), key=cmd.order_id, cause=envelope)

    async def on_intercept(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        cmd: w.InterceptShipment = envelope.payload
        scenario = await scenarios.get(redis, "wms", cmd.order_id, "pass")
        if scenario == "hold":
            return  # told to hold: no answer (the intercept deadline decides)
        outcome = (w.InterceptOutcome.ALREADY_DISPATCHED if scenario == "already_dispatched"
                   else w.InterceptOutcome.INTERCEPTED)
        uow.publish(w.InterceptResult(ticket_id=cmd.ticket_id, order_id=cmd.order_id, outcome=outcome,
                                      decided_at=datetime.now(UTC)), key=cmd.order_id, cause=envelope)

    async def on_release(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        """The held parcel goes on to the buyer; the simulator has nothing to record."""

    return Worker("wms", settings, [Subscription(WMS_COMMANDS, [
        route(w.ExpectReturn, on_expect_return), route(w.ShipAfterSales, on_ship), route(w.ReturnGoodsToBuyer, on_ship),
        route(w.InterceptShipment, on_intercept), route(w.ReleaseIntercept, on_release)])],
        unit_of_work=SqlUnitOfWork)
