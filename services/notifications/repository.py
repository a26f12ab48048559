"""The notifications worker's data: the buyer deadlines it reminds of (``uow.deadlines``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.quarantine import DueItem, Quarantine
from services.common.tables import BuyerDeadlineRow
from services.common.uow import SqlUnitOfWork, UnitOfWork

SCHEMA = "0009"  # buyer_deadlines


@dataclass
class BuyerDeadline:
    """A deadline the buyer must meet (send the goods back, confirm receipt), and its reminder."""

    ticket_id: str
    ticket_no: str
    order_id: str
    buyer_id: str
    status: str
    deadline_at: datetime
    remind_at: datetime
    reminded_at: datetime | None = None


class Deadlines(Protocol):
    async def get(self, ticket_id: str) -> BuyerDeadline | None:
        """Locked: one change of a ticket's deadline at a time."""

    async def save(self, deadline: BuyerDeadline) -> None: ...

    async def forget(self, ticket_id: str) -> None:
        """The ticket no longer waits on the buyer."""

    async def reminders_due(self, now: datetime, skip: Quarantine) -> list[DueItem]: ...

    async def mark_reminded(self, ticket_id: str, deadline_at: datetime, now: datetime) -> bool:
        """False when another replica reminded, or the deadline changed meanwhile."""


class NotificationsUnitOfWork(UnitOfWork):
    deadlines: Deadlines


class SqlNotificationsUnitOfWork(SqlUnitOfWork, NotificationsUnitOfWork):
    def _open(self, session: AsyncSession) -> None:
        self.deadlines = DeadlineRepository(session)


class DeadlineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, ticket_id: str) -> BuyerDeadline | None:
        row = await self.session.get(BuyerDeadlineRow, ticket_id, with_for_update=True)
        if row is None:
            return None
        return BuyerDeadline(row.ticket_id, row.ticket_no, row.order_id, row.buyer_id, row.status, row.deadline_at,
                             row.remind_at, row.reminded_at)

    async def save(self, deadline: BuyerDeadline) -> None:
        values = vars(deadline).copy()
        await self.session.execute(insert(BuyerDeadlineRow).values(**values).on_conflict_do_update(
            index_elements=["ticket_id"], set_={k: v for k, v in values.items() if k != "ticket_id"}))

    async def forget(self, ticket_id: str) -> None:
        await self.session.execute(delete(BuyerDeadlineRow).where(BuyerDeadlineRow.ticket_id == ticket_id))

    async def reminders_due(self, now: datetime, skip: Quarantine) -> list[DueItem]:
        row = BuyerDeadlineRow
        found = (await self.session.execute(
            select(row.ticket_id, row.order_id).where(row.reminded_at.is_(None), row.remind_at <= now,
                                                      row.deadline_at > now, skip.excluding(row.ticket_id))
            .order_by(row.remind_at).limit(500))).all()
        return [DueItem(r.ticket_id, r.order_id) for r in found]

    async def mark_reminded(self, ticket_id: str, deadline_at: datetime, now: datetime) -> bool:
        row = BuyerDeadlineRow
        done = await self.session.execute(
            update(row).where(row.ticket_id == ticket_id, row.deadline_at == deadline_at, row.reminded_at.is_(None))
            .values(reminded_at=now).returning(row.ticket_id))
        return done.first() is not None
