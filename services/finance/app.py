"""The finance refund worker: refunds through the payment channel, settlement, order close."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers, service
from .repository import SCHEMA, FinanceUnitOfWork, SqlFinanceUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[FinanceUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    deps = deps or Deps(settings)
    return Worker("finance", settings, handlers.subscriptions(), unit_of_work=SqlFinanceUnitOfWork, deps=deps,
                  background=[service.resend_due_refunds(deps)], needs_schema=SCHEMA)
