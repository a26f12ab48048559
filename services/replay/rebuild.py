"""Rebuilding the after-sales state from the log into an empty database, and the databases a
replay writes into.

Policies are configuration, not messages: a rebuild runs with the policies of the settings it is
given (today's), as the live workers do.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.common.db import make_engine
from services.common.settings import Settings
from services.common.tables import OrderRow, TicketRow

from .engine import Replay, Tally
from .log import PRINCIPAL, Recorded, RecordedLog, read_inputs

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RebuildRefused(Exception):
    """The target is not a database a rebuild may fill (the live one, or one holding state)."""


@dataclass(frozen=True)
class Rebuilt:
    tally: Tally
    log: RecordedLog
    orders: int


def replay_settings(settings: Settings) -> Settings:
    """The settings to read the log with: the replay's own Kafka principal (read on the inputs)."""
    return settings.as_principal(PRINCIPAL)


async def migrate(database_url: str) -> None:
    """Brings a database to the schema this code ships (Alembic runs its own loop: in a thread)."""
    from alembic import command

    from services.common.migrations_check import alembic_config

    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "head")


async def holds_state(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        for table in (OrderRow, TicketRow):
            if (await connection.execute(select(func.count()).select_from(table))).scalar_one():
                return True
    return False


def _same_database(one: str, other: str) -> bool:
    a, b = make_url(one), make_url(other)
    return (a.host, a.port or 5432, a.database) == (b.host, b.port or 5432, b.database)


async def replay_into(settings: Settings, database_url: str, inputs: list[Recorded], read_at: datetime,
                      progress: Callable[[int], None] = lambda n: None) -> Tally:
    """Replays ``inputs`` into ``database_url`` (migrated, empty) and lets deadlines run to ``read_at``."""
    if _same_database(database_url, settings.database_url):
        raise RebuildRefused("the target is the live database: a rebuild goes into a database of its own")
    await migrate(database_url)
    target = settings.with_changes(database_url=database_url)
    engine = make_engine(target)
    try:
        if await holds_state(engine):
            raise RebuildRefused("the target database already holds orders or tickets: give an empty one")
        replay = Replay(target, start=inputs[0].at if inputs else read_at)
        async with AsyncExitStack() as stack:
            await replay.open(stack, engine)
            await replay.feed(inputs, progress)
            await replay.finish(read_at)
        return replay.tally
    finally:
        await engine.dispose()


async def rebuild(settings: Settings, database_url: str, orders: set[str] | None = None, *,
                  reading: Callable[[int, int], None] = lambda done, total: None,
                  progress: Callable[[int, int], None] = lambda done, total: None) -> Rebuilt:
    """Reads the inputs (all, or those of ``orders``) and replays them into ``database_url``."""
    read_at = datetime.now(UTC)
    log = await read_inputs(replay_settings(settings), progress=reading)
    inputs = log.inputs if orders is None else log.of_orders(orders)
    tally = await replay_into(settings, database_url, inputs, read_at, lambda n: progress(n, len(inputs)))
    return Rebuilt(tally, log, len({r.key for r in inputs if orders is None or r.key in orders}))


@asynccontextmanager
async def scratch_database(settings: Settings, label: str) -> AsyncIterator[str]:
    """A new, empty database on the live database's server (its role needs CREATEDB), dropped
    afterwards: where a what-if (or a test's rebuild) writes, never the live one."""
    name = f"aftersales_{label}_{uuid.uuid4().hex[:10]}"
    if not _NAME.match(name):
        raise ValueError(f"not a database name: {name!r}")
    server = make_url(settings.database_url)
    admin = create_async_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')  # a checked name: not a parameter
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()
