"""The notifications worker: its own consumer group over the tickets topic (see ``service``)."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers, service
from .repository import SCHEMA, NotificationsUnitOfWork, SqlNotificationsUnitOfWork


def build_worker(settings: Settings) -> Worker[NotificationsUnitOfWork]:
    deps = Deps(settings)
    return Worker("notifications", settings, handlers.subscriptions(), unit_of_work=SqlNotificationsUnitOfWork,
                  deps=deps, background=[service.remind(deps)], needs_schema=SCHEMA)
