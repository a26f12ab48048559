"""Warehouse records: after-sales receipts, shipments and intercepts, listable per ticket, sku, day."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tables import InterceptRow, ReceiptRow, ShipmentRow, TicketRow
from services.common.tickets import TicketStore
from services.domain.ticket import Ticket


class WarehouseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tickets = TicketStore(session)

    async def ticket(self, ticket_id: str) -> Ticket | None:
        return await self.tickets.get(ticket_id)

    async def add_receipt(self, row: ReceiptRow) -> bool:
        """False if this receipt id was already recorded (the WMS sent it twice)."""
        values = {c.name: getattr(row, c.name) for c in ReceiptRow.__table__.columns}
        stmt = insert(ReceiptRow).values(**values).on_conflict_do_nothing().returning(ReceiptRow.receipt_id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    def add_shipment(self, row: ShipmentRow) -> None:
        self.session.add(row)

    async def shipment(self, shipment_id: uuid.UUID) -> ShipmentRow | None:
        return await self.session.get(ShipmentRow, shipment_id, with_for_update=True)

    async def open_shipment_for(self, ticket_id: str) -> ShipmentRow | None:
        return (await self.session.execute(select(ShipmentRow).where(
            ShipmentRow.ticket_id == ticket_id, ShipmentRow.status == "REQUESTED"))).scalars().first()

    async def record_intercept_request(self, ticket_id: str, order_id: str, at: datetime) -> None:
        await self.session.execute(insert(InterceptRow).values(
            ticket_id=ticket_id, order_id=order_id, requested_at=at).on_conflict_do_nothing())

    async def record_intercept_result(self, ticket_id: str, order_id: str, outcome: str, at: datetime) -> None:
        """Upsert: the answer may come before the request was recorded here (requested_at = at then)."""
        await self.session.execute(insert(InterceptRow).values(
            ticket_id=ticket_id, order_id=order_id, requested_at=at, outcome=outcome, decided_at=at,
        ).on_conflict_do_update(index_elements=[InterceptRow.ticket_id],
                                set_={"outcome": outcome, "decided_at": at}))

    async def ticket_exists(self, ticket_id: str, order_id: str) -> bool:
        return (await self.session.execute(select(TicketRow.ticket_id).where(
            TicketRow.ticket_id == ticket_id, TicketRow.order_id == order_id))).first() is not None

    async def receipts(self, *, ticket_id: str | None = None, sku: str | None = None,
                       day: date | None = None) -> list[ReceiptRow]:
        return await self._records(ReceiptRow, ReceiptRow.received_at, ticket_id, sku, day)

    async def shipments(self, *, ticket_id: str | None = None, sku: str | None = None,
                        day: date | None = None) -> list[ShipmentRow]:
        """Per day means per dispatch day."""
        return await self._records(ShipmentRow, ShipmentRow.dispatched_at, ticket_id, sku, day)

    async def _records(self, model: Any, at: Any, ticket_id: str | None, sku: str | None,
                       day: date | None) -> list[Any]:
        stmt = select(model).order_by(at)
        if ticket_id:
            stmt = stmt.where(model.ticket_id == ticket_id)
        if sku:
            stmt = stmt.where(model.lines.contains([{"sku": sku}]))
        if day:
            start = datetime.combine(day, time.min, tzinfo=UTC)
            stmt = stmt.where(at >= start, at < start + timedelta(days=1))
        return list((await self.session.execute(stmt)).scalars().all())
