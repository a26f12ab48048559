"""Growth check (issue 14): does a ticket cost the same on a database holding 10k and 100k tickets?

A scratch database (dropped afterwards) gets its history in two ways:

- real tickets: a first refund-only burst runs through every worker and simulator process;
- copies of them: every row those tickets left, in every table that grows with tickets (orders,
  tickets and their audit, refunds, ledgers, monitoring, settlement, warehouse, the outbox, and
  the inbox rows of their events), copied with new order, ticket, buyer and event ids until the
  database holds 10k tickets, then 100k.

Running 100k tickets for real would take this box over an hour (about 30 a second); copies put
the same rows into the same indexes, which is what a table scan or an unpruned table would show.
What copies do not give: cross references between copied rows are not kept (a copied refund's
ledger is not its own), and no copy is in a waiting state (the copied tickets were all completed).

At each size the same burst of new refund-only tickets runs, and the workers' and PostgreSQL's
CPU seconds per ticket are compared: the target is within 20 % between 10k and 100k.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import CATALOGUE
from services.actors import World, projection_probe
from services.common.bus import Bus, Watcher
from services.common.db import make_engine, make_session_factory
from services.common.procs import ALL_WORKERS, WorkerProcesses
from services.common.settings import Settings
from services.replay.rebuild import migrate, scratch_database

# Rows that do not grow with tickets (catalogue, users, sessions, aggregates per shop and day,
# ops work items, quarantine, dead letters), or belong to no order (the payment simulator's).
NOT_HISTORY = {"alembic_version", "reasons", "backoffice_users", "backoffice_sessions", "monitoring_counters",
               "monitoring_dirty_days", "monitoring_work_items", "monitoring_buyer_flags", "quarantined_items",
               "dead_letters", "parked_order_events", "sim_payment_refunds", "pgbench_accounts",
               "pgbench_branches", "pgbench_history", "pgbench_tellers"}
RENAMED = {"order_id", "ticket_id", "buyer_id", "ticket_no", "key"}  # each copy gets its own (suffix ~n)
FIRST = ("orders", "tickets")  # parents before the rows that refer to them (ticket_audit -> tickets)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    default: str | None


def _copy_of(table: str, columns: list[Column]) -> str | None:
    """``INSERT … SELECT`` copying a table's rows of the template orders, once per ``g``."""
    names = {c.name for c in columns}
    if "order_id" in names:
        which = "template.order_id = ANY(:orders)"
    elif table == "outbox":
        which = "template.key = ANY(:orders)"
    elif "ticket_id" in names:
        which = "template.ticket_id IN (SELECT ticket_id FROM tickets WHERE order_id = ANY(:orders))"
    elif table == "inbox":
        which = "template.event_id IN (SELECT event_id FROM outbox WHERE key = ANY(:orders))"
    else:
        return None
    kept = [c for c in columns if not (c.default or "").startswith("nextval(")]  # serial ids: new ones
    values = []
    for c in kept:
        if c.type == "uuid":
            values.append("gen_random_uuid()")
        elif c.name in RENAMED and c.type == "character varying":
            values.append(f"template.\"{c.name}\" || '~' || g")
        else:
            values.append(f"template.\"{c.name}\"")
    columns_ = ", ".join(f'"{c.name}"' for c in kept)
    # names from the database's own catalogue, values bound: no input reaches the text
    return (f'INSERT INTO "{table}" ({columns_}) SELECT {", ".join(values)} FROM "{table}" AS template, '  # noqa: S608
            "generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g "
            f"WHERE {which} ON CONFLICT DO NOTHING")


async def copy_history(engine: AsyncEngine, orders: list[str], first: int, last: int) -> dict[str, int]:
    """Copies the template orders' rows ``last - first + 1`` times; rows written per table."""
    async with engine.connect() as connection:
        found = (await connection.execute(text(
            "SELECT c.table_name, c.column_name, c.data_type, c.column_default FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position"))).all()
    tables: dict[str, list[Column]] = {}
    for table, column, type_, default in found:
        tables.setdefault(table, []).append(Column(column, type_, default))
    order = [t for t in FIRST if t in tables] + sorted(t for t in tables if t not in FIRST and t not in NOT_HISTORY)
    written: dict[str, int] = {}
    async with engine.begin() as connection:
        for table in order:
            statement = _copy_of(table, tables[table])
            if statement is not None:
                done = await connection.execute(text(statement), {"orders": orders, "first": first, "last": last})
                written[table] = done.rowcount
    async with engine.connect() as connection:  # fresh statistics and visibility, as autovacuum would leave
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in written:
            await autocommit.exec_driver_sql(f'VACUUM ANALYZE "{table}"')
    return written


async def checkpoints(engine: AsyncEngine) -> int:
    """Checkpoints the server has run (a copy writes gigabytes of WAL: one may fall in a burst)."""
    async with engine.connect() as connection:
        return int((await connection.execute(text(
            "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"))).scalar_one())


async def count_tickets(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM tickets"))).scalar_one())


def _postgres_cpu_seconds() -> float:
    """CPU seconds of the PostgreSQL backends serving connections (the pooled connections of the
    workers live through a burst; the server's own processes, which may end in between, are left
    out, and ``checkpoints_during`` says whether a checkpoint ran)."""
    from bench.run import _cpu_seconds  # bench.run imports this module

    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if title.startswith("postgres:") and re.search(r"\d+\.\d+\.\d+\.\d+\(\d+\)", title):
                total += _cpu_seconds(int(pid))  # a backend: "postgres: user db host(port) state"
        except OSError:  # the process ended while we looked
            continue
    return total


async def growth(settings: Settings, burst: int, sizes: list[int], log_dir: Path,
                 env: dict[str, str]) -> dict[str, Any]:
    """The burst's per-ticket cost on a scratch database at each history size in ``sizes``."""
    from bench.run import _orders, _usage, caught_up, refunds_of  # the lifecycle steps the main benchmark runs

    levels: list[dict[str, Any]] = []
    async with scratch_database(settings, "growth") as url:
        await migrate(url)
        engine = make_engine(settings.model_copy(update={"database_url": url}))
        procs = WorkerProcesses(ALL_WORKERS, log_dir / "growth", env={**env, "DATABASE_URL": url}, metrics=True)
        procs.start()
        try:
            await procs.ready()
            async with Bus(settings, "bench") as bus, Watcher(settings, [t.name for t in CATALOGUE]) as watcher:
                world = World(bus, watcher, projection_probe(make_session_factory(engine)))
                template: list[str] = []
                copies = 0
                for size in [0, *sizes]:
                    copied: dict[str, Any] = {}
                    held = await count_tickets(engine)
                    if size and held < size:
                        more = -(-(size - held) // len(template))  # whole copies of the template, rounded up
                        started = time.monotonic()
                        rows = await copy_history(engine, template, copies + 1, copies + more)
                        copies += more
                        copied = {"copies": more, "seconds": round(time.monotonic() - started, 1),
                                  "rows": sum(rows.values()), "rows_per_table": rows}
                    orders = await _orders(world, burst, "PAID", lambda: caught_up(settings, procs))
                    held = await count_tickets(engine)
                    workers, postgres, checkpointed = _usage(procs), _postgres_cpu_seconds(), await checkpoints(engine)
                    elapsed, _ = await refunds_of(world, orders, [(1, 2)], timeout=600)
                    workers_after, postgres_after = _usage(procs), _postgres_cpu_seconds()
                    by_worker = {n: round((workers_after[n][0] - workers[n][0]) / burst * 1000, 1)
                                 for n in workers_after if n in workers}
                    levels.append({
                        "tickets_before": held, "burst": burst, "per_s": round(burst / elapsed, 1),
                        "worker_cpu_ms_per_ticket": round(sum(by_worker.values()), 1),
                        "postgres_cpu_ms_per_ticket": round((postgres_after - postgres) / burst * 1000, 1),
                        "checkpoints_during": await checkpoints(engine) - checkpointed,
                        "worker_cpu_ms_per_ticket_by_process": by_worker, "copied": copied})
                    template = template or orders
        finally:
            procs.stop()
            await engine.dispose()
    result: dict[str, Any] = {"levels": levels}
    if len(levels) >= 2:  # the largest size against the one before it (100k against 10k)
        before, largest = levels[-2], levels[-1]
        result["largest_vs_before"] = {figure: round(largest[figure] / before[figure], 2) if before[figure] else None
                                       for figure in ("per_s", "worker_cpu_ms_per_ticket",
                                                      "postgres_cpu_ms_per_ticket")}
    return result
