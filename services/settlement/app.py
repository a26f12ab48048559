"""The settlement worker: its own consumer group over order facts, tickets and settled refunds."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers
from .repository import SCHEMA, SettlementUnitOfWork, SqlSettlementUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[SettlementUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    return Worker("settlement", settings, handlers.subscriptions(), unit_of_work=SqlSettlementUnitOfWork,
                  deps=deps or Deps(settings), needs_schema=SCHEMA, prompt=False)  # statements
