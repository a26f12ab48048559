"""Workers refuse an outdated schema; the scheduler cancels unpaid orders passively."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.migrations_check import (
    SchemaNotCurrent,
    head_revision,
    require_current_schema,
    require_schema,
)
from services.common.routes import Deps
from services.common.runtime import run_due
from services.common.tables import OrderRow, OutboxRow
from services.scheduler.repository import SqlSchedulerUnitOfWork
from services.scheduler.service import unpaid_orders

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_worker_refuses_a_database_without_the_current_schema(stack):
    name = f"empty_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(stack.database_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
    elsewhere = create_async_engine(stack.database_url, connect_args={"server_settings": {"search_path": name}})
    try:
        with pytest.raises(SchemaNotCurrent, match=r"at nothing.*aftersales db upgrade"):
            await require_current_schema(elsewhere)
        async with elsewhere.begin() as conn:
            await conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL)"))
            await conn.execute(text("INSERT INTO alembic_version VALUES ('0000')"))
        with pytest.raises(SchemaNotCurrent, match="at 0000"):
            await require_current_schema(elsewhere)
        await require_current_schema(admin)  # the real database is current
    finally:
        await elsewhere.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await admin.dispose()


async def test_a_worker_starts_on_the_schema_it_needs_or_a_later_one(stack):
    """Workers deploy one at a time: the database may be ahead of a worker, never behind it."""
    name = f"rolling_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(stack.database_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
        await conn.execute(text(f'CREATE TABLE "{name}".alembic_version (version_num varchar(32) NOT NULL)'))
        await conn.execute(text(f"INSERT INTO \"{name}\".alembic_version VALUES ('0002')"))  # noqa: S608 - our own generated name
    at_0002 = create_async_engine(stack.database_url, connect_args={"server_settings": {"search_path": name}})
    try:
        assert await require_schema(at_0002, "0001") == "0002"  # older worker, newer schema
        assert await require_schema(at_0002, "0002") == "0002"
        with pytest.raises(SchemaNotCurrent, match="at 0002, this worker needs 0004 or later"):
            await require_schema(at_0002, "0004")  # finance's copy of order payments is not there yet
        with pytest.raises(SchemaNotCurrent):
            await require_schema(at_0002)  # no minimum given: the head this code ships
        async with at_0002.begin() as conn:  # a newer release migrated past what this code knows
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        assert await require_schema(at_0002, "0004") == "9999_from_the_future"
        assert await require_schema(admin, "0004") == head_revision()
    finally:
        await at_0002.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await admin.dispose()


async def test_unpaid_orders_are_closed_after_the_payment_timeout(stack, sessions):
    old, fresh = f"O-old-{uuid.uuid4().hex[:6]}", f"O-new-{uuid.uuid4().hex[:6]}"
    mine = f"shop-unpaid-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        for oid, placed in ((old, now - timedelta(minutes=31)), (fresh, now - timedelta(minutes=5))):
            session.add(OrderRow(order_id=oid, shop_id=mine, buyer_id="b", state="PENDING_PAYMENT",
                                 placed_at=placed, shipping_fee_cents=0, platform_subsidy_cents=0,
                                 platform_fee_cents=0, close_requested=False, lines=[], version=0))
    job = unpaid_orders(Deps(stack.with_changes(scheduler_shops=[mine]), lambda: now))  # this test's rows only
    assert await run_due(partial(SqlSchedulerUnitOfWork, sessions, f"scheduler-{uuid.uuid4().hex[:6]}"), job) == 1
    async with sessions() as session:
        closes = (await session.execute(select(OutboxRow.key).where(
            OutboxRow.type == "CloseOrder", OutboxRow.key.in_([old, fresh])))).scalars().all()
    assert closes == [old]


async def test_a_shop_with_a_longer_payment_timeout_does_not_starve_the_others(stack, sessions):
    patient, mine = f"shop-patient-{uuid.uuid4().hex[:6]}", f"shop-unpaid-{uuid.uuid4().hex[:6]}"
    settings = stack.with_changes(shop_policies=f'{{"{patient}": {{"payment_timeout_days": 1}}}}',
                                  scheduler_shops=[patient, mine])  # this test's rows only
    now = datetime.now(UTC)
    waiting = [f"O-wait-{uuid.uuid4().hex[:6]}" for _ in range(120)]
    overdue = f"O-due-{uuid.uuid4().hex[:6]}"
    async with sessions() as session, session.begin():
        for i, oid in enumerate(waiting):  # older than the default timeout, within the shop's own
            session.add(OrderRow(order_id=oid, shop_id=patient, buyer_id="b", state="PENDING_PAYMENT",
                                 placed_at=now - timedelta(hours=3, minutes=i), shipping_fee_cents=0,
                                 platform_subsidy_cents=0, platform_fee_cents=0, close_requested=False,
                                 lines=[], version=0))
        session.add(OrderRow(order_id=overdue, shop_id=mine, buyer_id="b", state="PENDING_PAYMENT",
                             placed_at=now - timedelta(minutes=40), shipping_fee_cents=0, platform_subsidy_cents=0,
                             platform_fee_cents=0, close_requested=False, lines=[], version=0))
    job = unpaid_orders(Deps(settings, lambda: now))
    # one tick: the 120 orders within their shop's timeout do not crowd out the overdue one
    assert await run_due(partial(SqlSchedulerUnitOfWork, sessions, f"scheduler-{uuid.uuid4().hex[:6]}"), job) == 1
    async with sessions() as session:
        closes = set((await session.execute(select(OutboxRow.key).where(
            OutboxRow.type == "CloseOrder", OutboxRow.key.in_([*waiting, overdue])))).scalars().all())
    assert closes == {overdue}
