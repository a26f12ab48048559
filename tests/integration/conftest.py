"""Fixtures every integration test shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from services.common.settings import Settings
from services.intake.reasons import ReasonCatalogue


@pytest_asyncio.fixture(scope="session", autouse=True)
async def reasons(stack: Settings, sessions) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    """The intake worker seeds the reason catalogue when it starts; tests that call intake's use
    cases in-process need the same catalogue on a fresh database (CI starts from one)."""
    redis = Redis.from_url(stack.redis_url)
    try:
        await ReasonCatalogue(sessions, redis).seed_defaults()
    finally:
        await redis.aclose()
    yield
