"""The ERP sync worker."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers, service
from .repository import SCHEMA, ErpUnitOfWork, SqlErpUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[ErpUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    deps = deps or Deps(settings)
    return Worker("erp_sync", settings, handlers.subscriptions(), unit_of_work=SqlErpUnitOfWork, deps=deps,
                  background=[service.resend_due(deps)], needs_schema=SCHEMA)
