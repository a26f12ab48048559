"""The dead-letter worker: records what every worker dead-lettered, for ops tooling and counts."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers, service
from .repository import SCHEMA, DeadLetterUnitOfWork, SqlDeadLetterUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[DeadLetterUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    deps = deps or Deps(settings)
    return Worker("dead_letters", settings, handlers.subscriptions(), unit_of_work=SqlDeadLetterUnitOfWork,
                  deps=deps, background=[service.summarize(deps)], needs_schema=SCHEMA, prompt=False)  # records for ops
