"""The warehouse worker: after-sales receipts (售后入库) and shipments (售后出库) with the WMS."""

from __future__ import annotations

from services.common.routes import Deps
from services.common.runtime import Worker
from services.common.settings import Settings

from . import handlers
from .repository import SCHEMA, SqlWarehouseUnitOfWork, WarehouseUnitOfWork


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[WarehouseUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    return Worker("warehouse", settings, handlers.subscriptions(), unit_of_work=SqlWarehouseUnitOfWork,
                  deps=deps or Deps(settings), needs_schema=SCHEMA,
                  prompt=False)  # parcels and receipts move in hours
