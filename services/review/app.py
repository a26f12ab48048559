"""The review worker: ops review, manager and finance approval, automatic approval rules."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers
from .repository import SCHEMA, ReviewUnitOfWork, SqlReviewUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[ReviewUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    return Worker("review", settings, handlers.subscriptions(), unit_of_work=SqlReviewUnitOfWork,
                  deps=deps or Deps(settings), needs_schema=SCHEMA)
