"""The settlement worker: its own consumer group over order facts, tickets and settled refunds."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers
from .repository import SCHEMA, SettlementUnitOfWork, SqlSettlementUnitOfWork


def build_worker(settings: Settings) -> Worker[SettlementUnitOfWork]:
    return Worker("settlement", settings, handlers.subscriptions(), unit_of_work=SqlSettlementUnitOfWork,
                  deps=Deps(settings), needs_schema=SCHEMA)
