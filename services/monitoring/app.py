"""The monitoring worker: its own consumer group over the facts it counts (see ``service``)."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers, service
from .repository import SCHEMA, MonitoringUnitOfWork, SqlMonitoringUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[MonitoringUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    deps = deps or Deps(settings)
    return Worker("monitoring", settings, handlers.subscriptions(), unit_of_work=SqlMonitoringUnitOfWork,
                  deps=deps, background=[service.escalate(deps), service.publish_figures(deps)],
                  needs_schema=SCHEMA, prompt=False)  # figures: nobody waits on the next one
