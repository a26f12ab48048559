"""Fixtures every integration test shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from contracts.topics import DLQ, OPS_ALERTS, REJECTIONS, TICKETS
from services.common.settings import Settings
from services.intake.reasons import ReasonCatalogue

from .helpers import Marks, topic_marks


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


@pytest_asyncio.fixture
async def marks(stack: Settings) -> Marks:
    """Where the shared topics end before the test acts: ``read_topic`` starts there."""
    return await topic_marks(stack, (DLQ.name, OPS_ALERTS.name, REJECTIONS.name, TICKETS.name))
