"""Quarantine for periodic jobs: one item that fails for a reason of its own must not stop the rest.

Before, a job handled 100 rows in one transaction; one poisoned ticket rolled all of them back
on every tick, and another ticket waited for ever. Now each item runs in its own transaction;
one that fails (not an outage) is set aside here with an ops alert, excluded from the job's
later queries (``Quarantine.excluding``), and released by hand once fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.ops import OpsAlert, Severity

from .tables import QuarantinedItem
from .uow import UnitOfWork


@dataclass(frozen=True)
class DueItem:
    """One piece of a periodic job's work: its id (as text) and the order it concerns."""

    id: str
    order_id: str


class Quarantine:
    def __init__(self, worker: str, job: str) -> None:
        self.worker = worker
        self.job = job

    def excluding(self, column: Any) -> Any:
        """A WHERE clause leaving out this job's quarantined items (``column`` is the item id)."""
        return ~exists(select(QuarantinedItem.item_id).where(and_(
            QuarantinedItem.worker == self.worker, QuarantinedItem.job == self.job,
            QuarantinedItem.item_id == cast(column, String))))

    async def park(self, uow: UnitOfWork, item: DueItem, error: str) -> None:
        await uow.set_aside(self.worker, self.job, item.id, item.order_id, error)
        uow.publish(OpsAlert(kind="PERIODIC_ITEM_QUARANTINED", severity=Severity.CRITICAL,
                             message=f"{self.worker}/{self.job}: item {item.id} set aside after {error}"[:500],
                             order_id=item.order_id), key=item.order_id)


async def quarantined(session: AsyncSession) -> list[QuarantinedItem]:
    return list((await session.execute(
        select(QuarantinedItem).order_by(QuarantinedItem.quarantined_at))).scalars().all())


async def release(session: AsyncSession, worker: str, job: str, item_id: str) -> bool:
    result = await session.execute(delete(QuarantinedItem).where(
        QuarantinedItem.worker == worker, QuarantinedItem.job == job, QuarantinedItem.item_id == item_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
