"""The monitoring worker: its own consumer group over the facts it counts (see ``service``)."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers, service
from .repository import SCHEMA, MonitoringUnitOfWork, SqlMonitoringUnitOfWork


def build_worker(settings: Settings) -> Worker[MonitoringUnitOfWork]:
    deps = Deps(settings)
    return Worker("monitoring", settings, handlers.subscriptions(), unit_of_work=SqlMonitoringUnitOfWork,
                  deps=deps, background=[service.escalate(deps), service.publish_figures(deps)],
                  needs_schema=SCHEMA)
