"""Comparing a rebuilt database with the live one, table by table, row by row.

Every table of the after-sales state takes part (tickets and their audit trail, the order
projections, the refund ledger and refunds, compensations, receipts and shipments, ERP orders,
monitoring, notifications' deadlines, settlement, dead letters, the back office's decisions), but
not the runtime's bookkeeping (inbox, outbox, quarantine), people's accounts and sessions, nor the
simulators' tables (their systems are not replayed).

The back office's own note of what people submitted over HTTP is not compared either: it is
written by the web request, not by a message; the decisions are inputs, and what they did is in
the tickets and their audit trail, which are.

What is compared is what the rows say, not when they were written: moments (timestamp columns)
differ by the live system's processing lag and are left out; days (date columns) are compared.
Surrogate row numbers are left out too, and so are the resend counters of refunds and ERP orders
(a resend job ticks on the live clock, a replay on the log's); the money, the statuses and the
audit trail are compared, the trail entry by entry in its order.
A rebuild of some orders (``orders``) compares the rows of those orders and of their tickets; the
tables that are not per order (the reasons catalogue, daily counters) only in a whole rebuild.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, DateTime, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.tables import Base

LEFT_OUT = {"inbox", "outbox", "quarantined_items", "backoffice_users", "backoffice_sessions", "monitoring_dirty_days",
            "sim_order_line_labels", "sim_order_payments", "sim_payment_refunds",
            # the back office's note of who submitted what over HTTP, written by the web request with
            # the person's account: the decisions themselves are inputs, their effects are compared
            "backoffice_decisions"}
# not per order: the reasons catalogue, daily counters, and each buyer's serial-returner figures
WHOLE_REBUILD_ONLY = {"reasons", "monitoring_counters", "monitoring_buyer_flags"}
IGNORED_COLUMNS = {
    "ticket_audit": {"id"},
    "parked_order_events": {"id"},
    "monitoring_state_times": {"id", "seconds"},  # how long a status lasted: live processing time
    # how many times a request went out depends on when the live resend job happened to tick
    "refunds": {"attempts"},
    "erp_orders": {"attempts"},
    # where the dead letter sits: the replay's own offsets for messages it made itself
    "dead_letters": {"dead_letter_id", "partition", "offset", "summarized", "replays"},
}
SEQUENCES = {"ticket_audit": ("ticket_id", "id")}  # compared entry by entry, in this order per ticket


@dataclass(frozen=True)
class Difference:
    table: str
    key: str
    column: str  # "" when the whole row is on one side only
    live: Any
    rebuilt: Any

    def __str__(self) -> str:
        if not self.column:
            side = "only live" if self.live is not None else "only rebuilt"
            return f"{self.table} {self.key}: {side}: {self.live if self.live is not None else self.rebuilt}"
        return f"{self.table} {self.key}: {self.column} live={self.live!r} rebuilt={self.rebuilt!r}"


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID | date | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _compared(table: Table) -> list[Column[Any]]:
    ignored = IGNORED_COLUMNS.get(table.name, set())
    return [c for c in table.columns if c.name not in ignored and not isinstance(c.type, DateTime)]


def tables(whole: bool) -> list[Table]:
    return [t for t in Base.metadata.sorted_tables
            if t.name not in LEFT_OUT and (whole or t.name not in WHOLE_REBUILD_ONLY)]


async def _rows(engine: AsyncEngine, table: Table, orders: set[str] | None,
                tickets: set[str] | None) -> dict[tuple[Any, ...], tuple[str, dict[str, Any]]]:
    """The table's rows in scope, by key (its primary key, its place in a sequence, or, for a
    table whose key is left out, the whole row and how many times it repeats), with a label."""
    columns = _compared(table)
    sequence = SEQUENCES.get(table.name)
    statement = select(*columns)
    if sequence:
        group, order = sequence
        statement = statement.add_columns(func.row_number().over(
            partition_by=table.c[group], order_by=table.c[order]).label("position"))
    if orders is not None:
        if "order_id" in table.c:
            statement = statement.where(table.c.order_id.in_(orders))
        elif "ticket_id" in table.c:
            statement = statement.where(table.c.ticket_id.in_(tickets or set()))
        elif "original_key" in table.c:
            statement = statement.where(table.c.original_key.in_(orders))
    ignored = IGNORED_COLUMNS.get(table.name, set())
    keys = [c.name for c in table.primary_key.columns if c.name not in ignored]
    if sequence:
        keys = [sequence[0], "position"]
    async with engine.connect() as connection:
        found = (await connection.execute(statement)).mappings().all()
    rows: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
    repeats: Counter[tuple[Any, ...]] = Counter()
    for row in found:
        plain = {name: _plain(value) for name, value in row.items()}
        key = tuple(plain[k] for k in keys) if keys else tuple(sorted(plain.items(), key=lambda kv: kv[0]))
        repeats[key] += 1
        label = "/".join(str(plain[k]) for k in keys) if keys else f"copy {repeats[key]}"
        rows[(*key, repeats[key])] = (label, plain)
    return rows


async def compare(live: AsyncEngine, rebuilt: AsyncEngine, orders: set[str] | None = None,
                  ) -> tuple[dict[str, int], list[Difference]]:
    """Rows compared per table, and every difference (none on a healthy system)."""
    tickets: set[str] | None = None
    if orders is not None:
        ticket_table = Base.metadata.tables["tickets"]
        async with live.connect() as connection:
            tickets = set((await connection.execute(
                select(ticket_table.c.ticket_id).where(ticket_table.c.order_id.in_(orders)))).scalars())
    counts: dict[str, int] = {}
    differences: list[Difference] = []
    for table in tables(whole=orders is None):
        in_live = await _rows(live, table, orders, tickets)
        in_rebuilt = await _rows(rebuilt, table, orders, tickets)
        counts[table.name] = len(in_live)
        for key in sorted(in_live.keys() | in_rebuilt.keys(), key=str):
            (label, left), (_, right) = in_live.get(key, ("", None)), in_rebuilt.get(key, ("", None))
            if left is None or right is None:
                label = label or in_rebuilt[key][0]
                differences.append(Difference(table.name, label, "", left, right))
                continue
            differences.extend(Difference(table.name, label, column, left[column], right[column])
                               for column in left if left[column] != right[column])
    return counts, differences
