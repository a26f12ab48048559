"""The intake worker: order projection and the after-sales front door."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from contracts.topics import ORDER_EVENTS, REQUESTS
from services.common.runtime import Context, Subscription, Worker
from services.common.settings import Settings

from . import handlers
from .reasons import ReasonCatalogue
from .service import Deps, request_rejected


def build_worker(settings: Settings) -> Worker:
    deps = Deps(settings, clock=lambda: datetime.now(UTC))

    async def seed_reasons(ctx: Context) -> None:
        redis = Redis.from_url(settings.redis_url)
        try:
            await ReasonCatalogue(ctx.sessions, redis).seed_defaults()
        finally:
            await redis.aclose()

    return Worker("intake", settings, [
        Subscription(ORDER_EVENTS.name, handlers.order_handlers(deps)),
        Subscription(REQUESTS.name, handlers.request_handlers(deps), on_rejected=request_rejected),
    ], on_start=seed_reasons)
