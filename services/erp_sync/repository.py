"""ERP sync's data: the orders sent to merchants' ERPs and their retry schedule."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.quarantine import DueItem, Quarantine
from services.common.tables import ErpOrderRow, TicketRow


class ErpRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: ErpOrderRow) -> bool:
        """False if this ticket already has an order of this kind (a redelivered transition)."""
        values = {c.name: getattr(row, c.name) for c in ErpOrderRow.__table__.columns
                  if getattr(row, c.name) is not None}
        stmt = insert(ErpOrderRow).values(**values).on_conflict_do_nothing().returning(
            ErpOrderRow.erp_order_id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def get(self, erp_order_id: uuid.UUID) -> ErpOrderRow | None:
        return await self.session.get(ErpOrderRow, erp_order_id, with_for_update=True)

    async def due(self, now: datetime, skip: Quarantine, limit: int = 50) -> list[DueItem]:
        rows = (await self.session.execute(
            select(ErpOrderRow.erp_order_id, ErpOrderRow.order_id)
            .where(ErpOrderRow.status == "SENT", ErpOrderRow.next_attempt_at <= now,
                   skip.excluding(ErpOrderRow.erp_order_id))
            .order_by(ErpOrderRow.next_attempt_at).limit(limit))).all()
        return [DueItem(str(erp_order_id), order_id) for erp_order_id, order_id in rows]

    async def claim_due(self, erp_order_id: uuid.UUID, now: datetime) -> ErpOrderRow | None:
        return (await self.session.execute(
            select(ErpOrderRow).where(ErpOrderRow.erp_order_id == erp_order_id, ErpOrderRow.status == "SENT",
                                      ErpOrderRow.next_attempt_at <= now)
            .with_for_update(skip_locked=True))).scalar_one_or_none()

    async def ticket_exists(self, ticket_id: str, order_id: str) -> bool:
        return (await self.session.execute(select(TicketRow.ticket_id).where(
            TicketRow.ticket_id == ticket_id, TicketRow.order_id == order_id))).first() is not None

    async def failed(self) -> list[ErpOrderRow]:
        return list((await self.session.execute(
            select(ErpOrderRow).where(ErpOrderRow.status == "FAILED").order_by(ErpOrderRow.created_at)
        )).scalars().all())
