"""Scheduler's queries: tickets past their deadline, unpaid orders past the payment timeout,
parked order events past their wait. Listing takes no lock; each item is then claimed on its own
with SKIP LOCKED and checked again, so several schedulers never do the same item twice.
The scheduler's unit of work hands them out (``uow.deadlines``, ``uow.unpaid``, ``uow.parked``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.parked import Parked
from services.common.quarantine import DueItem, Quarantine
from services.common.tables import OrderRow, ParkedOrderEvent, TicketRow
from services.common.tickets import Tickets, TicketStore, to_domain
from services.common.uow import SqlUnitOfWork, UnitOfWork
from services.domain.ticket import Ticket

SCHEMA = "0013"  # tickets.reissue and tickets.delivery_refused: the oldest schema this worker runs on


@dataclass(frozen=True)
class UnpaidOrder:
    order_id: str
    shop_id: str
    placed_at: datetime


class Deadlines(Protocol):
    async def overdue_tickets(self, now: datetime, skip: Quarantine, *,
                              shops: list[str] | None = None) -> list[DueItem]: ...

    async def claim_overdue_ticket(self, ticket_id: str, now: datetime) -> Ticket | None: ...


class Unpaid(Protocol):
    async def unpaid_orders(self, placed_before: datetime, skip: Quarantine, *, shops: list[str] | None = None,
                            except_shops: list[str] | None = None) -> list[DueItem]: ...

    async def claim_unpaid_order(self, order_id: str) -> UnpaidOrder | None: ...

    async def close_requested(self, order_id: str) -> None: ...


class ParkedEvents(Protocol):
    async def expired_parked(self, skip: Quarantine, *, facts_before: datetime,
                             requests_before: datetime) -> list[DueItem]: ...

    async def claim_expired_parked(self, parked_id: int, *, facts_before: datetime,
                                   requests_before: datetime) -> Parked | None: ...

    async def drop_parked(self, parked_id: int) -> None: ...


class SchedulerUnitOfWork(UnitOfWork):
    tickets: Tickets
    deadlines: Deadlines
    unpaid: Unpaid
    parked: ParkedEvents


class SqlSchedulerUnitOfWork(SqlUnitOfWork, SchedulerUnitOfWork):
    def _open(self, session: AsyncSession) -> None:
        repository = SchedulerRepository(session)
        self.tickets = TicketStore(session, self.stage)
        self.deadlines = self.unpaid = self.parked = repository


def _items(rows: Sequence[Row[Any, str]]) -> list[DueItem]:
    return [DueItem(str(item_id), order_id) for item_id, order_id in rows]


class SchedulerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def overdue_tickets(self, now: datetime, skip: Quarantine, *, shops: list[str] | None = None,
                              limit: int = 100) -> list[DueItem]:
        stmt = (select(TicketRow.ticket_id, TicketRow.order_id)
                .where(TicketRow.deadline_at <= now, skip.excluding(TicketRow.ticket_id)))
        if shops is not None:
            stmt = stmt.where(TicketRow.shop_id.in_(shops))
        return _items((await self.session.execute(stmt.order_by(TicketRow.deadline_at).limit(limit))).all())

    async def claim_overdue_ticket(self, ticket_id: str, now: datetime) -> Ticket | None:
        row = (await self.session.execute(
            select(TicketRow).where(TicketRow.ticket_id == ticket_id, TicketRow.deadline_at <= now)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True))).scalar_one_or_none()
        return to_domain(row) if row else None

    async def unpaid_orders(self, placed_before: datetime, skip: Quarantine, *, shops: list[str] | None = None,
                            except_shops: list[str] | None = None, limit: int = 100) -> list[DueItem]:
        """Unpaid orders placed before the cutoff, oldest first, for some shops or all but some."""
        stmt = (select(OrderRow.order_id, OrderRow.order_id)
                .where(OrderRow.state == "PENDING_PAYMENT", OrderRow.close_requested.is_(False),
                       OrderRow.placed_at <= placed_before, skip.excluding(OrderRow.order_id)))
        if shops is not None:
            stmt = stmt.where(OrderRow.shop_id.in_(shops))
        if except_shops:
            stmt = stmt.where(OrderRow.shop_id.not_in(except_shops))
        return _items((await self.session.execute(stmt.order_by(OrderRow.placed_at).limit(limit))).all())

    async def claim_unpaid_order(self, order_id: str) -> UnpaidOrder | None:
        row = (await self.session.execute(
            select(OrderRow.order_id, OrderRow.shop_id, OrderRow.placed_at)
            .where(OrderRow.order_id == order_id, OrderRow.state == "PENDING_PAYMENT",
                   OrderRow.close_requested.is_(False))
            .with_for_update(skip_locked=True))).first()
        return UnpaidOrder(*row) if row else None

    async def close_requested(self, order_id: str) -> None:
        await self.session.execute(update(OrderRow).where(OrderRow.order_id == order_id)
                                   .values(close_requested=True))

    async def expired_parked(self, skip: Quarantine, *, facts_before: datetime, requests_before: datetime,
                             limit: int = 100) -> list[DueItem]:
        return _items((await self.session.execute(
            select(ParkedOrderEvent.id, ParkedOrderEvent.order_id)
            .where(self._expired(facts_before, requests_before), skip.excluding(ParkedOrderEvent.id))
            .order_by(ParkedOrderEvent.parked_at).limit(limit))).all())

    async def claim_expired_parked(self, parked_id: int, *, facts_before: datetime,
                                   requests_before: datetime) -> Parked | None:
        row = (await self.session.execute(
            select(ParkedOrderEvent).where(ParkedOrderEvent.id == parked_id,
                                           self._expired(facts_before, requests_before))
            .with_for_update(skip_locked=True))).scalar_one_or_none()
        return Parked.of(row) if row else None

    @staticmethod
    def _expired(facts_before: datetime, requests_before: datetime) -> ColumnElement[bool]:
        is_request = ParkedOrderEvent.type == "RequestAfterSales"
        return or_(and_(is_request, ParkedOrderEvent.parked_at <= requests_before),
                   and_(~is_request, ParkedOrderEvent.parked_at <= facts_before))

    async def drop_parked(self, parked_id: int) -> None:
        await self.session.execute(delete(ParkedOrderEvent).where(ParkedOrderEvent.id == parked_id))
