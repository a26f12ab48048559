"""Scheduler's queries: tickets past their deadline, unpaid orders past the payment timeout,
parked order events past their wait. Each batch is claimed with SKIP LOCKED, so several
schedulers can run without doing the same work twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tables import OrderRow, ParkedOrderEvent, TicketRow
from services.common.tickets import to_domain
from services.domain.ticket import Ticket


class SchedulerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def overdue_tickets(self, now: datetime, limit: int = 100) -> list[Ticket]:
        rows = (await self.session.execute(
            select(TicketRow).where(TicketRow.deadline_at <= now).order_by(TicketRow.deadline_at)
            .limit(limit).with_for_update(skip_locked=True))).scalars().all()
        return [to_domain(r) for r in rows]

    async def unpaid_orders(self, placed_before: datetime, *, shops: list[str] | None = None,
                            except_shops: list[str] | None = None, limit: int = 100) -> list[OrderRow]:
        """Unpaid orders placed before the cutoff, oldest first, for some shops or all but some."""
        stmt = select(OrderRow).where(OrderRow.state == "PENDING_PAYMENT", OrderRow.close_requested.is_(False),
                                      OrderRow.placed_at <= placed_before)
        if shops is not None:
            stmt = stmt.where(OrderRow.shop_id.in_(shops))
        if except_shops:
            stmt = stmt.where(OrderRow.shop_id.not_in(except_shops))
        return list((await self.session.execute(
            stmt.order_by(OrderRow.placed_at).limit(limit).with_for_update(skip_locked=True))).scalars().all())

    async def expired_parked(self, *, facts_before: datetime, requests_before: datetime,
                             limit: int = 100) -> list[ParkedOrderEvent]:
        is_request = ParkedOrderEvent.type == "RequestAfterSales"
        return list((await self.session.execute(
            select(ParkedOrderEvent).where(or_(
                and_(is_request, ParkedOrderEvent.parked_at <= requests_before),
                and_(~is_request, ParkedOrderEvent.parked_at <= facts_before)))
            .order_by(ParkedOrderEvent.parked_at).limit(limit).with_for_update(skip_locked=True))).scalars().all())

    async def drop_parked(self, parked_id: int) -> None:
        await self.session.execute(delete(ParkedOrderEvent).where(ParkedOrderEvent.id == parked_id))

