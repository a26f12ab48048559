"""Warehouse records: after-sales receipts, shipments and intercepts, listable per ticket, sku, day;
and the warehouse's unit of work, which hands them out with the tickets it moves."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tables import InterceptRow, ReceiptRow, ShipmentRow
from services.common.tickets import Tickets, TicketStore
from services.common.uow import BatchRows, SqlUnitOfWork, UnitOfWork
from services.domain.erp_order import SkuQuantity
from services.domain.shipment import Shipment, ShipmentKind, ShipmentStatus

SCHEMA = "0013"  # tickets.reissue and tickets.delivery_refused: the oldest schema this worker runs on


@dataclass(frozen=True)
class Receipt:
    """An after-sales receipt (售后入库) as the WMS reported it: a record, not a lifecycle."""

    receipt_id: uuid.UUID
    ticket_id: str
    ticket_no: str
    order_id: str
    receipt_type: str
    lines: tuple[SkuQuantity, ...]
    inspection: str
    operator: str
    received_at: datetime
    note: str = ""


class Receipts(Protocol):
    async def add(self, receipt: Receipt) -> bool:
        """False if this receipt id was already recorded (the WMS sent it twice)."""


class Shipments(Protocol):
    async def get(self, shipment_id: uuid.UUID) -> Shipment | None:
        """Locked."""

    async def open_for(self, ticket_id: str) -> Shipment | None:
        """The ticket's shipment still waiting to be dispatched, if any."""

    async def add(self, shipment: Shipment) -> None: ...

    async def save(self, shipment: Shipment) -> None: ...


class Intercepts(Protocol):
    async def requested(self, ticket_id: str, order_id: str, at: datetime) -> None: ...

    async def answered(self, ticket_id: str, order_id: str, outcome: str, at: datetime) -> None:
        """Upsert: the answer may come before the request was recorded here (requested_at = at then)."""


class WarehouseUnitOfWork(UnitOfWork):
    tickets: Tickets
    receipts: Receipts
    shipments: Shipments
    intercepts: Intercepts


class SqlWarehouseUnitOfWork(SqlUnitOfWork, WarehouseUnitOfWork):
    """A batch's tickets are locked first, in one statement, in ticket id order. A dispatch then
    locks its shipment after the ticket (one by one it took the shipment first): only this
    worker, which has no periodic job, locks shipments, so no other transaction holds them the
    other way round."""

    tickets: TicketStore

    def _open(self, session: AsyncSession) -> None:
        self.tickets = TicketStore(session, self.stage)
        self.receipts = ReceiptRepository(session)
        self.shipments = ShipmentRepository(session)
        self.intercepts = InterceptRepository(session)

    def _batch_rows(self) -> Sequence[BatchRows]:
        return (self.tickets,)


class ReceiptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, receipt: Receipt) -> bool:
        values = asdict(receipt)
        values["lines"] = [{"sku": ln.sku, "quantity": ln.quantity} for ln in receipt.lines]
        stmt = insert(ReceiptRow).values(**values).on_conflict_do_nothing().returning(ReceiptRow.receipt_id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None


def _shipment(row: ShipmentRow) -> Shipment:
    return Shipment(
        shipment_id=row.shipment_id, ticket_id=row.ticket_id, ticket_no=row.ticket_no, order_id=row.order_id,
        kind=ShipmentKind(row.shipment_type), lines=tuple(SkuQuantity(ln["sku"], ln["quantity"]) for ln in row.lines),
        requested_at=row.requested_at, status=ShipmentStatus(row.status), carrier=row.carrier,
        waybill=row.waybill, operator=row.operator, dispatched_at=row.dispatched_at)


def _shipment_values(shipment: Shipment) -> dict[str, Any]:
    return dict(
        ticket_id=shipment.ticket_id, ticket_no=shipment.ticket_no, order_id=shipment.order_id,
        shipment_type=shipment.kind.value,
        lines=[{"sku": ln.sku, "quantity": ln.quantity} for ln in shipment.lines], status=shipment.status.value,
        requested_at=shipment.requested_at, carrier=shipment.carrier, waybill=shipment.waybill,
        operator=shipment.operator, dispatched_at=shipment.dispatched_at)


class ShipmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, shipment_id: uuid.UUID) -> Shipment | None:
        row = await self.session.get(ShipmentRow, shipment_id, with_for_update=True, populate_existing=True)
        return _shipment(row) if row else None

    async def open_for(self, ticket_id: str) -> Shipment | None:
        row = (await self.session.execute(select(ShipmentRow).where(
            ShipmentRow.ticket_id == ticket_id,
            ShipmentRow.status == ShipmentStatus.REQUESTED.value))).scalars().first()
        return _shipment(row) if row else None

    async def add(self, shipment: Shipment) -> None:
        self.session.add(ShipmentRow(shipment_id=shipment.shipment_id, **_shipment_values(shipment)))
        await self.session.flush()  # a later look-up in the same transaction (a batch) must see it

    async def save(self, shipment: Shipment) -> None:
        row = await self.session.get(ShipmentRow, shipment.shipment_id)
        if row is None:
            raise LookupError(f"shipment {shipment.shipment_id} was not loaded")
        for name, value in _shipment_values(shipment).items():
            setattr(row, name, value)


class InterceptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def requested(self, ticket_id: str, order_id: str, at: datetime) -> None:
        await self.session.execute(insert(InterceptRow).values(
            ticket_id=ticket_id, order_id=order_id, requested_at=at).on_conflict_do_nothing())

    async def answered(self, ticket_id: str, order_id: str, outcome: str, at: datetime) -> None:
        await self.session.execute(insert(InterceptRow).values(
            ticket_id=ticket_id, order_id=order_id, requested_at=at, outcome=outcome, decided_at=at,
        ).on_conflict_do_update(index_elements=[InterceptRow.ticket_id],
                                set_={"outcome": outcome, "decided_at": at}))


class WarehouseRecords:
    """The read side for ops and the CLI: receipts and shipments per ticket, sku or day."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
