"""The monitoring worker on Kafka and PostgreSQL: the hand-computed day gives its figures through
the production runtime, and the same messages delivered again after a restart change none of
them (the inbox holds every fact once; the counters, stays and line states are in the same
transaction as the inbox row)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts import encode
from services.common.bus import Bus
from services.common.routes import Deps, Subscription
from services.common.runtime import Worker
from services.common.settings import Settings
from services.common.tables import MonitoringLineRow, MonitoringWorkItemRow
from services.monitoring import handlers, service
from services.monitoring.repository import SqlMonitoringUnitOfWork
from tests.unit.use_cases.monitoring_day import (
    DAY,
    EXPECTED_BREACHES_NEXT_DAY,
    EXPECTED_REASONS,
    EXPECTED_TIME_IN_STATE,
    EXPECTED_UNITS,
    NEXT_DAY,
    day,
)

from .helpers import Statements, aftersales, eventually, new_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")


def monitoring_on(topic: str, name: str, settings: Settings) -> Worker[SqlMonitoringUnitOfWork]:
    """Monitoring's own routes, read from one test topic (the catalogue's topics carry other
    tests' traffic), under a consumer name of the test's own."""
    routes = [r for sub in handlers.subscriptions() for r in sub.routes]
    return Worker(name, settings, [Subscription(topic, routes)], unit_of_work=SqlMonitoringUnitOfWork,
                  deps=Deps(settings), replayable=False)


async def figures(sessions: Any, settings: Settings, shop_id: str, first: Any, last: Any) -> service.Stats:
    async with SqlMonitoringUnitOfWork(sessions, "monitoring") as uow:
        return await service.stats(uow, Deps(settings, lambda: datetime.now(UTC)), shop_id, first, last)


def summary(found: service.Stats) -> dict[str, Any]:
    return {"sold": found.figures.units_sold, "in_tickets": found.figures.units_in_tickets,
            "rate": str(found.figures.rate), "reasons": found.figures.reasons,
            "refunded": found.figures.refunded, "failed": found.figures.refunds_failed,
            "retried": found.figures.refunds_retried, "breaches": found.figures.sla_breaches,
            "time_in_state": {t.status: (t.tickets, t.p50_seconds, t.p95_seconds, t.max_seconds)
                              for t in found.time_in_state}}


async def test_the_day_gives_its_figures_and_a_redelivery_after_a_restart_changes_none(stack, sessions):
    topic = await new_topic(stack, partitions=3)
    name = f"t-monitoring-{uuid.uuid4().hex[:6]}"
    today = day()

    async def send_all() -> None:
        async with Bus(stack) as bus:
            for _, envelope in today.messages:
                await bus.send_raw(topic, encode(envelope), key=envelope.key)

    async def line_count() -> int:
        async with sessions() as session:
            return int((await session.execute(select(func.count()).select_from(MonitoringLineRow).where(
                MonitoringLineRow.order_id.in_([today.first_order, today.second_order])))).scalar_one())

    async def day_done() -> bool:
        found = await figures(sessions, stack, today.shop_id, NEXT_DAY, NEXT_DAY)
        return found.figures.sla_breaches == EXPECTED_BREACHES_NEXT_DAY and await line_count() == 2

    async def items() -> list[tuple[int, str]]:
        async with sessions() as session:
            rows = (await session.execute(select(MonitoringWorkItemRow.occurrences, MonitoringWorkItemRow.state)
                                          .where(MonitoringWorkItemRow.order_id == today.second_order))).all()
        return [(r.occurrences, r.state) for r in rows]

    app = monitoring_on(topic, name, stack).build_app()
    await app.start()
    try:
        await send_all()
        await eventually(day_done, timeout=30)
    finally:
        await app.stop()
    first = summary(await figures(sessions, stack, today.shop_id, DAY, DAY))
    assert (first["sold"], first["in_tickets"]) == (EXPECTED_UNITS["sold"], EXPECTED_UNITS["in_tickets"])
    assert (first["rate"], first["reasons"]) == (EXPECTED_UNITS["rate"], EXPECTED_REASONS)
    assert (first["refunded"], first["failed"], first["retried"]) == ({"CNY": 5000}, 1, 1)
    assert first["time_in_state"] == EXPECTED_TIME_IN_STATE  # PostgreSQL's percentile_disc
    assert await items() == [(2, "OPEN")]

    # restarted (same consumer group and inbox), and every message of the day comes again
    app = monitoring_on(topic, name, stack).build_app()
    await app.start()
    try:
        await send_all()
        marker = day()  # a later fact of another shop: once it counts, the copies before it were read
        async with Bus(stack) as bus:
            placed = marker.messages[0][1]
            for n in range(6):  # keys enough to reach every partition
                order_id = f"{marker.first_order}-{n}"
                copy = placed.model_copy(update={"event_id": uuid.uuid4(), "key": order_id, "payload": (
                    placed.payload.model_copy(update={"order_id": order_id}))})
                await bus.send_raw(topic, encode(copy), key=order_id)

        async def marker_read() -> bool:  # 3 units in each of the 6 orders
            return (await figures(sessions, stack, marker.shop_id, DAY, DAY)).figures.units_sold == 18

        await eventually(marker_read, timeout=30)
    finally:
        await app.stop()
    assert summary(await figures(sessions, stack, today.shop_id, DAY, DAY)) == first
    assert summary(await figures(sessions, stack, today.shop_id, NEXT_DAY, NEXT_DAY))["breaches"] == \
        EXPECTED_BREACHES_NEXT_DAY
    assert await items() == [(2, "OPEN")]


async def test_the_cli_prints_the_days_figures_and_takes_its_work_items(stack, sessions):
    """``aftersales stats`` reads what the worker counted; ``aftersales alerts`` lists the day's
    item and acknowledges and resolves it once (a second acknowledgement is refused, exit 1)."""
    topic = await new_topic(stack, partitions=1)
    today = day()
    app = monitoring_on(topic, f"t-monitoring-{uuid.uuid4().hex[:6]}", stack).build_app()
    await app.start()
    try:
        async with Bus(stack) as bus:
            for _, envelope in today.messages:
                await bus.send_raw(topic, encode(envelope), key=envelope.key)

        async def day_done() -> bool:
            found = await figures(sessions, stack, today.shop_id, NEXT_DAY, NEXT_DAY)
            return found.figures.sla_breaches == EXPECTED_BREACHES_NEXT_DAY

        await eventually(day_done, timeout=30)
    finally:
        await app.stop()

    code, out, _ = await aftersales("stats", "--shop", today.shop_id, "--from", DAY.isoformat(), "--json")
    printed = json.loads(out)
    assert code == 0
    assert (printed["rate"]["in_tickets"], printed["rate"]["sold"]) == (EXPECTED_UNITS["in_tickets"],
                                                                         EXPECTED_UNITS["sold"])
    assert {(r["type"], r["reason"]): r["tickets"] for r in printed["reasons"]} == EXPECTED_REASONS
    assert {t["status"]: (t["tickets"], t["p50_seconds"], t["p95_seconds"], t["max_seconds"])
            for t in printed["time_in_state"]} == EXPECTED_TIME_IN_STATE
    code, text, _ = await aftersales("stats", "--shop", today.shop_id, "--from", DAY.isoformat())
    assert code == 0
    assert f"after-sales rate   {EXPECTED_UNITS['rate']}" in text

    code, out, _ = await aftersales("alerts", "list", "--all", "--order", today.second_order, "--json")
    ours = [item for item in json.loads(out) if item["order_id"] == today.second_order]
    assert code == 0
    assert len(ours) == 1
    assert ours[0]["occurrences"] == 2
    item_id = ours[0]["item_id"]
    assert (await aftersales("alerts", "ack", item_id, "--by", "ops-cli"))[:2] == (0, f"{item_id} acknowledged\n")
    code, _, err = await aftersales("alerts", "ack", item_id, "--by", "ops-cli")
    assert code == 1
    assert "refused" in err
    assert (await aftersales("alerts", "resolve", item_id, "--by", "ops-cli", "--note", "carrier called"))[:2] == (
        0, f"{item_id} resolved\n")
    async with sessions() as session:
        row = await session.get(MonitoringWorkItemRow, uuid.UUID(item_id))
    assert row is not None
    assert (row.state, row.acknowledged_by, row.resolved_by, row.note) == (
        "RESOLVED", "ops-cli", "ops-cli", "carrier called")


async def test_a_buyers_tickets_and_orders_in_the_window_are_counted_in_one_read(stack, sessions):
    """The serial-returner rule's two counts: only this buyer's, in this shop, since the window
    opened (a ticket or order just before it is not counted)."""
    from datetime import timedelta

    from services.common.tables import MonitoringOrderRow, MonitoringTicketRow

    shop, buyer, other = f"shop-{uuid.uuid4().hex[:8]}", "buyer-counted", "buyer-other"
    since = datetime(2026, 11, 1, tzinfo=UTC)
    placed = [(buyer, since - timedelta(seconds=1)), (buyer, since), (buyer, since + timedelta(days=3)),
              (other, since + timedelta(days=1))]
    async with sessions() as session, session.begin():
        for n, (who, at) in enumerate(placed):
            order_id = f"O-{uuid.uuid4().hex[:10]}"
            session.add(MonitoringOrderRow(order_id=order_id, shop_id=shop, buyer_id=who, placed_at=at, lines=[]))
            if n % 2 == 0:  # a ticket on every other order, opened when the order was placed
                session.add(MonitoringTicketRow(
                    ticket_id=str(uuid.uuid4()), order_id=order_id, shop_id=shop, buyer_id=who, type="REFUND_ONLY",
                    reason_code="NO_LONGER_WANTED", status="COMPLETED", status_since=at, opened_at=at))
    async with SqlMonitoringUnitOfWork(sessions, "monitoring") as uow:
        assert await uow.monitoring.buyer_activity(shop, buyer, since) == (1, 2)
        assert await uow.monitoring.buyer_activity(shop, other, since) == (0, 1)
        assert await uow.monitoring.buyer_activity("shop-elsewhere", buyer, since) == (0, 0)


async def test_a_batchs_ticket_saves_are_written_in_one_statement_and_the_buyer_count_sees_them(sessions):
    """Every change of a ticket in a batch is kept back and written with the batch's other
    tickets in one upsert; the serial-returner count, which runs for every ticket opened, writes
    them first, so a ticket opened earlier in the same batch counts."""
    from datetime import timedelta

    from services.common.tables import MonitoringTicketRow
    from services.monitoring.repository import TrackedTicket

    shop, buyer = f"shop-{uuid.uuid4().hex[:8]}", "buyer-batched"
    at = datetime(2026, 11, 20, tzinfo=UTC)
    first, second = (TrackedTicket(str(uuid.uuid4()), f"O-{uuid.uuid4().hex[:10]}", shop, buyer, "REFUND_ONLY",
                                   "NO_LONGER_WANTED", "PENDING_REVIEW", at, at) for _ in range(2))
    async with SqlMonitoringUnitOfWork(sessions, "monitoring") as uow:
        with Statements(sessions) as statements:
            await uow.monitoring.save_ticket(first)
            for status in ("REFUNDING", "COMPLETED"):
                tracked = await uow.monitoring.ticket(first.ticket_id)
                assert tracked is not None
                tracked.status, tracked.status_since = status, at + timedelta(minutes=1)
                await uow.monitoring.save_ticket(tracked)
            await uow.monitoring.save_ticket(second)
            assert await uow.monitoring.buyer_activity(shop, buyer, at - timedelta(days=1)) == (2, 0)
            await uow.commit()
    assert [sql.split()[0] for sql in statements.sent if "INTO monitoring_tickets" in sql] == ["INSERT"]
    async with sessions() as session:
        stored = dict((await session.execute(select(MonitoringTicketRow.ticket_id, MonitoringTicketRow.status).where(
            MonitoringTicketRow.shop_id == shop))).all())
    assert stored == {first.ticket_id: "COMPLETED", second.ticket_id: "PENDING_REVIEW"}
