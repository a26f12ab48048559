"""The scheduler: a worker with no subscriptions whose loops fire deadlines through the outbox."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import service
from .repository import SCHEMA, SchedulerUnitOfWork, SqlSchedulerUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[SchedulerUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    deps = deps or Deps(settings)
    return Worker("scheduler", settings, [], unit_of_work=SqlSchedulerUnitOfWork, deps=deps, background=[
        service.ticket_deadlines(deps), service.unpaid_orders(deps), service.parked_events(deps)], needs_schema=SCHEMA)
