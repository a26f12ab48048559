"""Engine and session factory, created by whoever runs a worker (never at import time)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .settings import Settings
from .tables import Base


def make_engine(settings: Settings) -> AsyncEngine:
    """No ``pool_pre_ping``: it cost two round trips (BEGIN, ROLLBACK) on every checkout, about a
    tenth of a worker's busy time under load (bench, 2026-12-05). A connection that died with a
    PostgreSQL restart fails its first statement instead; SQLAlchemy then drops the whole pool, and
    the runtime classifies the error as infrastructure and retries the transaction on a new one."""
    return create_async_engine(settings.database_url, pool_size=settings.db_pool_size,
                               max_overflow=settings.db_pool_size,
                               hide_parameters=True)  # SQL parameters may carry personal data


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def rows_of_orders(session: AsyncSession, row: type[Base], order_ids: Collection[str], *order_by: Any,
                         lock: bool = True) -> Sequence[Row[Any]]:
    """Every row of ``row``'s table that belongs to these orders (its ``order_id``): one statement
    for a fetched batch (``UnitOfWork.prepare``) instead of one per message. Locked unless ``lock``
    is False, in ``order_by`` order, so every process takes the same rows in the same order.

    Plain rows, not ORM objects: every caller turns them into its domain's objects and writes
    with its own statements, and building an ORM object (identity map, change tracking) for each
    row was about a sixth of finance's busy time in a burst's profile (2026-12-06)."""
    if not order_ids:
        return []
    table = row.__table__
    stmt = select(table).where(table.c.order_id.in_(sorted(order_ids))).order_by(*order_by)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).all()
