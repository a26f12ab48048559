"""Engine and session factory, created by whoever runs a worker (never at import time)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .settings import Settings


def make_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(settings.database_url, pool_size=settings.db_pool_size,
                               max_overflow=settings.db_pool_size, pool_pre_ping=True,
                               hide_parameters=True)  # SQL parameters may carry personal data


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
