"""The notifications worker's data: the buyer deadlines it reminds of (``uow.deadlines``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Row, Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import rows_of_orders
from services.common.quarantine import DueItem, Quarantine
from services.common.tables import BuyerDeadlineRow
from services.common.uow import BatchRows, SqlUnitOfWork, UnitOfWork

SCHEMA = "0009"  # buyer_deadlines (0015 indexes them by order: a batch's read is slower without it, not wrong)


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
    async def get(self, ticket_id: str, order_id: str) -> BuyerDeadline | None:
        """The deadline of the ticket (of that order), locked: one change of a ticket's deadline
        at a time."""

    async def save(self, deadline: BuyerDeadline) -> None: ...

    async def remove(self, ticket_id: str) -> None:
        """The ticket no longer waits on the buyer."""

    async def reminders_due(self, now: datetime, skip: Quarantine) -> list[DueItem]: ...

    async def mark_reminded(self, ticket_id: str, deadline_at: datetime, now: datetime) -> bool:
        """False when another replica reminded, or the deadline changed meanwhile."""


class NotificationsUnitOfWork(UnitOfWork):
    deadlines: Deadlines


class SqlNotificationsUnitOfWork(SqlUnitOfWork, NotificationsUnitOfWork):
    deadlines: DeadlineRepository

    def _open(self, session: AsyncSession) -> None:
        self.deadlines = DeadlineRepository(session)

    def _batch_rows(self) -> Sequence[BatchRows]:
        return (self.deadlines,)


def _deadline(row: BuyerDeadlineRow | Row[Any]) -> BuyerDeadline:
    return BuyerDeadline(row.ticket_id, row.ticket_no, row.order_id, row.buyer_id, row.status, row.deadline_at,
                         row.remind_at, row.reminded_at)


_DEADLINES = cast(Table, BuyerDeadlineRow.__table__)
_INSERT_DEADLINE = insert(_DEADLINES)
# Built once, executed with each deadline's values: a new deadline replaces the ticket's last one.
_SAVE_DEADLINE = _INSERT_DEADLINE.on_conflict_do_update(
    index_elements=["ticket_id"],
    set_={column.name: _INSERT_DEADLINE.excluded[column.name] for column in _DEADLINES.columns
          if column.name != "ticket_id"})


class DeadlineRepository:
    """A batch's deadlines are read, and locked, in one statement (``read_batch``); ``get`` then
    serves them, and knows a ticket of those orders without one has none: most changes of a
    ticket (every one of a refund-only ticket) wait on no buyer, and each used to cost a locked
    read by ticket id, 14 % of notifications' busy time in a burst's profile (2026-12-06)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._kept: dict[str, BuyerDeadline] = {}  # locked in this transaction, as last written
        self._read: set[str] = set()  # orders whose every deadline is in ``_kept``

    async def read_batch(self, order_ids: Collection[str]) -> None:
        wanted = sorted(set(order_ids) - self._read)
        if not wanted:
            return
        for row in await rows_of_orders(self.session, BuyerDeadlineRow, wanted, BuyerDeadlineRow.ticket_id):
            self._kept[row.ticket_id] = _deadline(row)
        self._read.update(wanted)

    async def write(self) -> None:
        """Nothing is kept back: saves and removals are written at once."""

    def forget(self) -> None:
        """A savepoint rolled back: deadlines are read again."""
        self._kept.clear()
        self._read.clear()

    async def get(self, ticket_id: str, order_id: str) -> BuyerDeadline | None:
        if ticket_id in self._kept:
            return replace(self._kept[ticket_id])
        if order_id in self._read:  # the batch locked every deadline of the order: this ticket has none
            return None
        row = await self.session.get(BuyerDeadlineRow, ticket_id, with_for_update=True,
                                     populate_existing=True)
        return None if row is None else _deadline(row)

    async def save(self, deadline: BuyerDeadline) -> None:
        await self.session.execute(_SAVE_DEADLINE, vars(deadline).copy())
        if deadline.order_id in self._read:
            self._kept[deadline.ticket_id] = replace(deadline)

    async def remove(self, ticket_id: str) -> None:
        await self.session.execute(delete(BuyerDeadlineRow).where(BuyerDeadlineRow.ticket_id == ticket_id))
        self._kept.pop(ticket_id, None)

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
