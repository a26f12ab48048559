"""Settlement's use cases on the fakes: the hand-computed two days give their statements (an
entry at completion, a partial refund after it, a full refund before a close, a compensation
holding its order until the ticket ends), each fact counts once, and finance's adjustment of a
refund carries the subsidy and fee recomputed in proportion."""

from __future__ import annotations

from typing import Any

import pytest

from services.domain.settlement import CyclePeriod, SettlementCycle
from services.settlement import service

from .settlement_cycle import (
    DAY_1,
    DAY_2,
    EXPECTED_DAY_1,
    EXPECTED_DAY_1_TOTALS,
    EXPECTED_DAY_2,
    EXPECTED_DAY_2_TOTALS,
    EXPECTED_HELD,
    EXPECTED_WEEK_TOTALS,
    cycle,
)
from .shop import Shop

pytestmark = pytest.mark.asyncio




async def statement(shop: Shop, shop_id: str, period: CyclePeriod) -> service.Statement:
    return await shop.run("settlement", lambda uow: service.statement(uow, shop.deps, shop_id, period))


def lines(found: service.Statement, orders: dict[str, str]) -> list[tuple[Any, ...]]:
    name = {order_id: n for n, order_id in orders.items()}
    return [(e.kind.value, name[e.order_id], e.amounts.paid_cents, e.amounts.subsidy_cents, e.amounts.fee_cents,
             e.amounts.net_cents) for e in found.entries]


def totals(found: service.Statement) -> tuple[int, ...]:
    (only,) = found.totals
    return (only.orders, only.paid_cents, only.subsidy_cents, only.fee_cents, only.refunded_cents, only.net_cents)


async def test_the_hand_computed_days_give_their_statements() -> None:
    shop = Shop()
    days = cycle()
    for _, envelope in days.messages:
        await shop.consume("settlement", envelope)

    first = await statement(shop, days.shop_id, CyclePeriod.parse(DAY_1.isoformat()))
    assert lines(first, days.orders) == EXPECTED_DAY_1
    assert totals(first) == EXPECTED_DAY_1_TOTALS
    assert first.payable_on.isoformat() == "2026-11-11"  # T+1
    second = await statement(shop, days.shop_id, CyclePeriod.parse(DAY_2.isoformat()))
    assert lines(second, days.orders) == EXPECTED_DAY_2
    assert totals(second) == EXPECTED_DAY_2_TOTALS
    week = await statement(shop, days.shop_id, CyclePeriod.parse("2026-W46"))
    assert totals(week) == EXPECTED_WEEK_TOTALS
    assert (week.cycle.first.isoformat(), week.payable_on.isoformat()) == ("2026-11-09", "2026-11-16")
    assert [(days_name, o.held_because()) for o in first.held
            for days_name, order_id in days.orders.items() if order_id == o.order_id] == EXPECTED_HELD


async def test_each_fact_counts_once_when_delivered_again() -> None:
    shop = Shop()
    days = cycle()
    for _, envelope in days.messages + days.messages:
        await shop.consume("settlement", envelope)
    week = await statement(shop, days.shop_id, CyclePeriod.parse("2026-W46"))
    assert totals(week) == EXPECTED_WEEK_TOTALS


async def test_a_shop_on_a_weekly_cycle_is_paid_the_policys_days_after_the_week() -> None:
    shop = Shop(shop_policies={"shop-w": {"settlement_cycle": "weekly", "settlement_delay_days": 3}})
    policy = shop.settings.policy_for("shop-w")
    assert policy.settlement_cycle is SettlementCycle.WEEKLY
    found = await statement(shop, "shop-w", CyclePeriod.containing(policy.settlement_cycle, DAY_1))
    assert (found.cycle.label, found.payable_on.isoformat(), found.entries) == ("2026-W46", "2026-11-18", [])
