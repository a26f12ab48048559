"""The intake worker: order projection and the after-sales front door."""

from __future__ import annotations

from redis.asyncio import Redis

from services.common.routes import Deps
from services.common.runtime import Context, Worker
from services.common.settings import Settings

from . import handlers
from .reasons import ReasonCatalogue
from .repository import SCHEMA, IntakeUnitOfWork, SqlIntakeUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[IntakeUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    async def seed_reasons(ctx: Context[IntakeUnitOfWork]) -> None:
        redis = Redis.from_url(settings.redis_url)
        try:
            await ReasonCatalogue(ctx.sessions, redis).seed_defaults()
        finally:
            await redis.aclose()

    return Worker("intake", settings, handlers.subscriptions(), unit_of_work=SqlIntakeUnitOfWork,
                  deps=deps or Deps(settings), on_start=seed_reasons, needs_schema=SCHEMA)
