"""The notifications worker: its own consumer group over the tickets topic (see ``service``)."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers, service
from .repository import SCHEMA, NotificationsUnitOfWork, SqlNotificationsUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[NotificationsUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    deps = deps or Deps(settings)
    return Worker("notifications", settings, handlers.subscriptions(), unit_of_work=SqlNotificationsUnitOfWork,
                  deps=deps, background=[service.remind(deps)], needs_schema=SCHEMA,
                  prompt=False)  # a buyer's message may leave a tenth of a second later
