"""A fetched batch's rows are read by the orders it names (``UnitOfWork.prepare``): each of those
reads must find its rows through an index that leads with the order id, or it would scan a table
that grows with history (issue 14: the per-ticket cost must not grow from 10k to 100k tickets)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.asyncio(loop_scope="session")

# every (table, column) a worker's ``prepare`` filters on with the batch's order ids
READ_BY_ORDER = [
    ("orders", "order_id"), ("parked_order_events", "order_id"),  # intake
    ("tickets", "order_id"),  # intake, review, warehouse, finance (TicketStore.read_batch)
    ("refunds", "order_id"), ("refund_ledger", "order_id"), ("finance_orders", "order_id"),  # finance
    ("monitoring_orders", "order_id"), ("monitoring_lines", "order_id"), ("monitoring_tickets", "order_id"),
    ("settlement_orders", "order_id"),
    ("buyer_deadlines", "order_id"),  # notifications
]


async def test_every_batch_read_by_order_has_an_index_leading_with_the_order_id(sessions: Any) -> None:
    async with sessions() as session:
        rows = (await session.execute(text(
            "select t.relname, a.attname from pg_index i join pg_class t on t.oid = i.indrelid "
            "join pg_attribute a on a.attrelid = t.oid and a.attnum = i.indkey[0]"))).all()
    leading = {(table, column) for table, column in rows}
    assert [read for read in READ_BY_ORDER if read not in leading] == []


async def test_the_planner_serves_a_batch_read_without_a_table_scan(sessions: Any) -> None:
    """With sequential scans priced out, each read's plan uses an index: one exists for it."""
    async with sessions() as session, session.begin():
        await session.execute(text("set local enable_seqscan = off"))
        plans = {}
        for table, column in READ_BY_ORDER:
            rows = (await session.execute(text(
                f"explain select * from {table} where {column} = any(:ids)"),  # noqa: S608 - our own names
                {"ids": ["O-a", "O-b"]})).scalars().all()
            plans[table] = " ".join(rows)
    assert {table: plan for table, plan in plans.items() if "Seq Scan" in plan} == {}
