"""The settlement worker on Kafka and PostgreSQL: the hand-computed two days give their
statements through the production runtime, the same messages delivered again change nothing,
and ``aftersales settlement statement`` prints them in a process of its own, as finance runs it."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from contracts import encode
from services.common.bus import Bus
from services.common.routes import Deps, Subscription
from services.common.runtime import Worker
from services.common.settings import Settings
from services.common.tables import SettlementEntryRow
from services.domain.settlement import Amounts, CyclePeriod, EntryKind
from services.settlement import handlers, service
from services.settlement.repository import Entry, SqlSettlementUnitOfWork
from tests.unit.use_cases.settlement_cycle import (
    DAY_1,
    EXPECTED_DAY_1,
    EXPECTED_DAY_1_TOTALS,
    EXPECTED_HELD,
    EXPECTED_WEEK_TOTALS,
    Cycle,
    cycle,
)

from .helpers import Statements, aftersales, eventually, new_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")


def settlement_on(topic: str, name: str, settings: Settings) -> Worker[SqlSettlementUnitOfWork]:
    """Settlement's own routes, read from one test topic, under a consumer name of the test's own."""
    routes = [r for sub in handlers.subscriptions() for r in sub.routes]
    return Worker(name, settings, [Subscription(topic, routes)], unit_of_work=SqlSettlementUnitOfWork,
                  deps=Deps(settings), replayable=False)


async def week_totals(sessions: Any, settings: Settings, shop_id: str) -> tuple[int, ...] | None:
    async with SqlSettlementUnitOfWork(sessions, "settlement") as uow:
        found = await service.statement(uow, Deps(settings, lambda: datetime.now(UTC)), shop_id,
                                        CyclePeriod.parse("2026-W46"))
    if not found.totals:
        return None
    (only,) = found.totals
    return (only.orders, only.paid_cents, only.subsidy_cents, only.fee_cents, only.refunded_cents, only.net_cents)


async def send(settings: Settings, topic: str, days: Cycle) -> None:
    async with Bus(settings) as bus:
        for _, envelope in days.messages:
            await bus.send_raw(topic, encode(envelope), key=envelope.key)


async def test_the_statements_of_the_hand_computed_days_and_the_command_that_prints_them(stack, sessions):
    topic = await new_topic(stack, partitions=1)  # one partition: a later marker read means all before it was
    days = cycle()
    app = settlement_on(topic, f"t-settlement-{uuid.uuid4().hex[:6]}", stack).build_app()
    await app.start()
    try:
        await send(stack, topic, days)

        async def settled() -> bool:
            return await week_totals(sessions, stack, days.shop_id) == EXPECTED_WEEK_TOTALS

        await eventually(settled, timeout=30)
        await send(stack, topic, days)  # every fact again
        marker = cycle()
        await send(stack, topic, marker)

        async def marker_settled() -> bool:
            return await week_totals(sessions, stack, marker.shop_id) == EXPECTED_WEEK_TOTALS

        await eventually(marker_settled, timeout=30)
    finally:
        await app.stop()
    assert await week_totals(sessions, stack, days.shop_id) == EXPECTED_WEEK_TOTALS

    code, out, err = await aftersales("settlement", "statement", "--shop", days.shop_id, "--cycle",
                                      DAY_1.isoformat(), "--json")
    assert code == 0, err
    printed = json.loads(out)
    name = {order_id: n for n, order_id in days.orders.items()}
    assert [(e["kind"], name[e["order_id"]], e["paid_cents"], e["subsidy_cents"], e["fee_cents"], e["net_cents"])
            for e in printed["entries"]] == EXPECTED_DAY_1
    (totals,) = printed["totals"]
    assert tuple(totals[k] for k in ("orders", "paid_cents", "subsidy_cents", "fee_cents", "refunded_cents",
                                     "net_cents")) == EXPECTED_DAY_1_TOTALS
    assert (printed["payable_on"], [(name[h["order_id"]], h["why"]) for h in printed["held"]]) == (
        "2026-11-11", EXPECTED_HELD)

    code, text, err = await aftersales("settlement", "statement", "--shop", days.shop_id, "--cycle", "2026-W46")
    assert code == 0, err
    assert "weekly cycle 2026-W46 (2026-11-09 .. 2026-11-15), payable on 2026-11-16" in text
    assert "3 order(s)" in text
    assert "net CNY 101.38" in text
    code, _, err = await aftersales("settlement", "statement", "--shop", days.shop_id, "--cycle", "2026-W60")
    assert code == 2
    assert "2026-W60" in err


async def test_a_batch_reads_its_orders_once_writes_them_at_commit_and_a_savepoint_undoes_its_share(sessions):
    """``prepare`` locks the batch's known orders in one statement; saves are kept and written in
    one statement at commit; a savepoint that rolls back takes back what was saved inside it."""
    known, new = f"O-sb-{uuid.uuid4().hex[:8]}", f"O-sb-{uuid.uuid4().hex[:8]}"
    async with SqlSettlementUnitOfWork(sessions, "settlement") as uow:
        order = await uow.orders.get(known)
        await uow.orders.save(replace(order, shop_id="shop-sb", amounts=Amounts(1_000, 10, 20)))
        await uow.commit()
    async with SqlSettlementUnitOfWork(sessions, "settlement") as uow:
        await uow.prepare([known, new])
        assert set(uow.orders._locked) == {known}  # an unknown order is created by its first fact only
        first = await uow.orders.get(known)
        first.paid = True
        await uow.orders.save(first)

        async def fails_inside_a_savepoint() -> None:
            async with uow.savepoint():
                inside = await uow.orders.get(known)
                inside.open_tickets.add("T-inside")
                await uow.orders.save(inside)
                raise RuntimeError("the savepoint's use case failed")
        with pytest.raises(RuntimeError):
            await fails_inside_a_savepoint()
        second = await uow.orders.get(new)
        second.completed = True
        await uow.orders.save(second)
        await uow.commit()
    async with SqlSettlementUnitOfWork(sessions, "settlement") as uow:
        stored = await uow.orders.get(known), await uow.orders.get(new)
    assert (stored[0].paid, stored[0].open_tickets, stored[0].amounts) == (True, set(), Amounts(1_000, 10, 20))
    assert (stored[1].completed, stored[1].paid) == (True, False)


async def test_a_batchs_lines_are_written_at_commit_and_a_line_waiting_for_its_order_enters_with_it(sessions):
    """Lines are kept back and written in one insert at the commit, the waiting lines of the
    orders entered in one update after it: an adjustment that waited, even one added earlier in
    the same batch, enters with its order; a line added again adds nothing; a savepoint that
    rolls back takes its lines back."""
    oid = f"O-se-{uuid.uuid4().hex[:8]}"
    day = datetime(2026, 11, 10, tzinfo=UTC)

    def line(kind: EntryKind, cents: int, ticket: str | None = None) -> Entry:
        return Entry(uuid.uuid4(), oid, "shop-se", ticket, kind, "CNY", Amounts(cents, 0, 0), day)
    waited_before, waited_now, settled = (line(EntryKind.REFUND, -300, "T-1"), line(EntryKind.REFUND, -200, "T-2"),
                                          line(EntryKind.ORDER, 1_000))
    async with SqlSettlementUnitOfWork(sessions, "settlement") as uow:
        await uow.entries.add(waited_before, None)
        await uow.commit()
    async with SqlSettlementUnitOfWork(sessions, "settlement") as uow:
        with Statements(sessions) as statements:
            await uow.entries.add(waited_now, None)  # waits: its order is not entered yet

            async def fails_inside_a_savepoint() -> None:
                async with uow.savepoint():
                    await uow.entries.add(line(EntryKind.REFUND, -50, "T-3"), None)
                    raise RuntimeError("the savepoint's use case failed")
            with pytest.raises(RuntimeError):
                await fails_inside_a_savepoint()
            await uow.entries.add(settled, day.date())
            await uow.entries.add(settled, day.date())  # the same fact again
            await uow.entries.enter_waiting(oid, day.date())
            await uow.commit()
    writes = [sql.split()[0] for sql in statements.sent if "settlement_entries" in sql]
    assert writes == ["INSERT", "INSERT", "UPDATE"]  # before the savepoint, then at the commit
    async with sessions() as session:
        stored = (await session.execute(select(SettlementEntryRow.paid_cents, SettlementEntryRow.entered_on)
                                        .where(SettlementEntryRow.order_id == oid))).all()
    assert sorted(stored) == [(-300, day.date()), (-200, day.date()), (1_000, day.date())]
