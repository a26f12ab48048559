"""ERP sync's data: the orders sent to merchants' ERPs and their retry schedule."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tables import ErpOrderRow


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

    async def due(self, now: datetime, limit: int = 50) -> list[ErpOrderRow]:
        return list((await self.session.execute(
            select(ErpOrderRow).where(ErpOrderRow.status == "SENT", ErpOrderRow.next_attempt_at <= now)
            .order_by(ErpOrderRow.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
        )).scalars().all())

    async def failed(self) -> list[ErpOrderRow]:
        return list((await self.session.execute(
            select(ErpOrderRow).where(ErpOrderRow.status == "FAILED").order_by(ErpOrderRow.created_at)
        )).scalars().all())
