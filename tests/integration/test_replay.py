"""What-if replays from the Kafka log into scratch PostgreSQL databases.

Each test records a run of its own on the real topics, as the order system, the buyers and the
back office would write it (a shop of its own, so the period's other requests are not in it):
no worker is running, so the only state there is comes from the replays. Ticket ids follow from
the buyers' request ids, so the recorded decisions name the tickets they decide.
"""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from contracts import Money
from contracts import aftersales as c
from contracts import decisions as d
from contracts import orders as o
from services.common.bus import Bus
from services.common.settings import Settings
from services.common.tables import TicketRow
from services.domain import ids
from services.replay.rebuild import RebuildRefused, rebuild, scratch_database
from services.replay.whatif import what_if

pytestmark = pytest.mark.asyncio(loop_scope="session")

TODAY = datetime.now(UTC)


def period_of_today(settings: Settings) -> tuple[date, date]:
    """The period of one day: today, in the reporting time zone (where the what-if counts days)."""
    day = TODAY.astimezone(ZoneInfo(settings.reporting_timezone)).date()
    return day, day


async def record_order(bus: Bus, shop: str, *, paid_cents: int, completed_days_ago: float | None = None) -> str:
    """An order as the order system writes it: placed, paid, shipped, and completed when asked."""
    order_id = f"O-wi-{uuid.uuid4().hex[:10]}"
    placed = TODAY - timedelta(days=(completed_days_ago or 0) + 3)
    await bus.publish(o.OrderPlaced(
        order_id=order_id, shop_id=shop, buyer_id="buyer-wi", placed_at=placed,
        lines=[o.OrderLine(line_no=1, sku="SKU-WI", quantity=1, unit_price=Money.cny(paid_cents),
                           paid=Money.cny(paid_cents), coupon_deduction=Money.cny(0),
                           points_deduction=Money.cny(0))],
        shipping_fee=Money.cny(0), platform_subsidy=Money.cny(0), platform_fee=Money.cny(0)), key=order_id)
    await bus.publish(o.OrderPaid(order_id=order_id, paid_at=placed + timedelta(minutes=1)), key=order_id)
    await bus.publish(o.OrderShipped(order_id=order_id, shipped_at=placed + timedelta(hours=5)), key=order_id)
    if completed_days_ago is not None:
        await bus.publish(o.OrderCompleted(order_id=order_id, completed_at=TODAY - timedelta(days=completed_days_ago)),
                          key=order_id)
    return order_id


async def record_request(bus: Bus, order_id: str, type_: str = "RETURN_AND_REFUND") -> str:
    request_id = uuid.uuid4()
    await bus.publish(c.RequestAfterSales(
        request_id=request_id, order_id=order_id, buyer_id="buyer-wi", type=c.AfterSalesType(type_),
        lines=[c.RequestedLine(line_no=1, quantity=1)], reason_code="NO_LONGER_WANTED"), key=order_id)
    return str(request_id)


async def test_a_longer_window_turns_the_refusals_of_days_8_to_15_into_tickets_and_changes_nothing_else(
        stack: Settings, tmp_path: Path) -> None:
    shop = f"shop-wi-{uuid.uuid4().hex[:8]}"
    requests: dict[int, str] = {}
    async with Bus(stack, "buyer-frontend") as bus:
        for days_ago in (2, 5, 8, 11, 15, 17, 25):  # asked 2 … 25 days after the order completed
            order_id = await record_order(bus, shop, paid_cents=8_800, completed_days_ago=days_ago - 0.5)
            requests[days_ago] = await record_request(bus, order_id)

    found = await what_if(stack, {"after_sales_window_days": 15}, *period_of_today(stack), shop)

    assert found.requests == 7
    assert {requests[n] for n in (2, 5)} == {r for r, o in found.baseline.items() if not o.refused}
    assert {found.baseline[requests[n]].refused for n in (8, 11, 15, 17, 25)} == {"OUTSIDE_AFTER_SALES_WINDOW"}
    assert found.by_change["refused → opened"] == sorted(requests[n] for n in (8, 11, 15))
    assert found.changed_requests() == sorted(requests[n] for n in (8, 11, 15))  # nothing else changes
    assert {found.changed[requests[n]].status for n in (8, 11, 15)} == {"PENDING_REVIEW"}
    assert found.changed[requests[17]].refused == "OUTSIDE_AFTER_SALES_WINDOW"
    today, changed = found.totals(found.baseline), found.totals(found.changed)
    assert (today["tickets"], changed["tickets"]) == (2, 5)
    assert changed["waiting_for_people"] - today["waiting_for_people"] == 3  # each now waits for ops

    written = found.write_csv(tmp_path / "changes.csv")
    with (tmp_path / "changes.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert written == 3
    assert {row["request_id"] for row in rows} == {requests[n] for n in (8, 11, 15)}
    assert {row["refused_today"] for row in rows} == {"OUTSIDE_AFTER_SALES_WINDOW"}

    again = await what_if(stack, {"after_sales_window_days": 15}, *period_of_today(stack), shop)
    assert again.baseline == found.baseline
    assert again.changed == found.changed


async def test_a_lower_manager_threshold_reports_exactly_the_tickets_between_the_two_thresholds(
        stack: Settings) -> None:
    shop = f"shop-wi-{uuid.uuid4().hex[:8]}"
    ops = c.Actor(role=c.Role.OPS, id="ops-wi")
    requests: dict[int, str] = {}
    async with Bus(stack, "back-office") as office, Bus(stack, "buyer-frontend") as bus:
        for yuan in (500, 1_500, 2_000, 3_000, 4_999, 6_000):
            order_id = await record_order(bus, shop, paid_cents=yuan * 100)
            requests[yuan] = request = await record_request(bus, order_id, "REFUND_ONLY")
            ticket_id = ids.ticket_id(uuid.UUID(request))
            await office.publish(d.ApproveTicket(ticket_id=ticket_id, order_id=order_id, actor=ops), key=order_id)
            if yuan >= 5_000:  # the one a manager approved (at today's 5,000 threshold)
                await office.publish(d.ApproveLargeRefund(
                    ticket_id=ticket_id, order_id=order_id, actor=c.Actor(role=c.Role.MANAGER, id="mgr-wi")),
                    key=order_id)
            elif yuan >= 3_000:  # finance approved these two; the other three still wait for finance
                await office.publish(d.ApproveRefund(
                    ticket_id=ticket_id, order_id=order_id, actor=c.Actor(role=c.Role.FINANCE, id="fin-wi")),
                    key=order_id)

    found = await what_if(stack, {"large_amount_threshold_cents": 200_000}, *period_of_today(stack), shop)

    between = sorted(requests[yuan] for yuan in (2_000, 3_000, 4_999))  # 2,000 ≤ refund < 5,000
    assert found.by_change["escalated to a manager"] == between
    assert [found.baseline[requests[yuan]].status for yuan in (2_000, 3_000, 4_999)] == [
        "PENDING_REFUND", "REFUNDING", "REFUNDING"]
    assert {found.changed[r].status for r in between} == {"PENDING_MANAGER"}
    # finance's two approvals no longer reach their tickets (waiting for a manager): counted, not applied
    assert found.rejected_commands == (0, 2)
    assert found.baseline[requests[6_000]] == found.changed[requests[6_000]]  # a manager decided it anyway
    assert found.changed[requests[6_000]].manager
    assert found.changed[requests[6_000]].decisions == 2
    assert found.changed_requests() == between
    today, changed = found.totals(found.baseline), found.totals(found.changed)
    assert changed["manager"] - today["manager"] == 3
    assert changed["waiting_for_people"] - today["waiting_for_people"] == 2  # the two finance had let go
    assert (today["decisions"], changed["decisions"]) == (9, 7)  # 6 ops, 1 manager; and 2 finance today


async def test_the_whatif_command_prints_the_changes_and_writes_them_to_a_csv(stack: Settings, tmp_path: Path) -> None:
    """``aftersales whatif`` in a process of its own, as a merchant's analyst runs it."""
    shop = f"shop-wi-{uuid.uuid4().hex[:8]}"
    async with Bus(stack, "buyer-frontend") as bus:
        inside = await record_request(bus, await record_order(bus, shop, paid_cents=5_000, completed_days_ago=3))
        outside = await record_request(bus, await record_order(bus, shop, paid_cents=5_000, completed_days_ago=10))
    policy, changes = tmp_path / "policy.json", tmp_path / "changes.csv"
    policy.write_text(json.dumps({"after_sales_window_days": 15}))
    first, last = period_of_today(stack)
    done = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "services.cli", "whatif", "--policy", str(policy), "--from", first.isoformat(),
        "--to", last.isoformat(), "--shop", shop, "--csv", str(changes)], capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"what-if for shop {shop}" in done.stdout
    assert "refused → opened: 1" in done.stdout
    assert f"request {outside}" in done.stdout
    assert inside not in done.stdout
    assert "1 changed request(s) written to" in done.stdout
    with changes.open() as file:
        assert [row["request_id"] for row in csv.DictReader(file)] == [outside]


async def test_a_rebuild_goes_only_into_an_empty_database_of_its_own(stack: Settings) -> None:
    shop = f"shop-rb-{uuid.uuid4().hex[:8]}"
    async with Bus(stack, "buyer-frontend") as bus:
        order_id = await record_order(bus, shop, paid_cents=5_000)
        request = await record_request(bus, order_id, "REFUND_ONLY")
    with pytest.raises(RebuildRefused, match="live database"):
        await rebuild(stack, stack.database_url, {order_id})
    async with scratch_database(stack, "test") as url:
        rebuilt = await rebuild(stack, url, {order_id})
        assert rebuilt.orders == 1
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            tickets = (await connection.execute(select(TicketRow.ticket_id, TicketRow.status))).all()
        await engine.dispose()
        assert [tuple(t) for t in tickets] == [(ids.ticket_id(uuid.UUID(request)), "PENDING_REVIEW")]
        with pytest.raises(RebuildRefused, match="already holds"):
            await rebuild(stack, url, {order_id})
