"""ERP sync's data: the orders sent to merchants' ERPs and their retry schedule; its unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.quarantine import DueItem, Quarantine
from services.common.tables import ErpOrderRow
from services.common.tickets import Tickets, TicketStore
from services.common.uow import SqlUnitOfWork, UnitOfWork
from services.domain.erp_order import ErpOrder, ErpOrderKind, ErpOrderStatus, SkuQuantity

SCHEMA = "0013"  # tickets.reissue and tickets.delivery_refused: the oldest schema this worker runs on

RETRYING = [ErpOrderStatus.SENT.value, ErpOrderStatus.CANCELLING.value]
"""Statuses with a request the ERP has not answered: the order, or its cancel."""


class ErpOrders(Protocol):
    async def add(self, order: ErpOrder) -> bool:
        """False if this ticket already has an order of this kind (a redelivered transition)."""

    async def get(self, erp_order_id: uuid.UUID) -> ErpOrder | None:
        """Locked."""

    async def due(self, now: datetime, skip: Quarantine) -> list[DueItem]:
        """SENT orders whose acknowledgement is overdue, oldest first (no locks)."""

    async def claim_due(self, erp_order_id: uuid.UUID, now: datetime) -> ErpOrder | None:
        """The order, locked, if it is still due and no other process holds it (SKIP LOCKED)."""

    async def save(self, order: ErpOrder) -> None: ...

    async def for_ticket(self, ticket_id: str) -> list[ErpOrder]:
        """The ticket's orders, locked."""


class ErpUnitOfWork(UnitOfWork):
    tickets: Tickets
    erp_orders: ErpOrders


class SqlErpUnitOfWork(SqlUnitOfWork, ErpUnitOfWork):
    def _open(self, session: AsyncSession) -> None:
        self.tickets = TicketStore(session, self.stage)
        self.erp_orders = ErpOrderRepository(session)


def _order(row: ErpOrderRow) -> ErpOrder:
    return ErpOrder(
        erp_order_id=row.erp_order_id, shop_id=row.shop_id, ticket_id=row.ticket_id, ticket_no=row.ticket_no,
        order_id=row.order_id, kind=ErpOrderKind(row.kind),
        lines=tuple(SkuQuantity(ln["sku"], ln["quantity"]) for ln in row.lines), status=ErpOrderStatus(row.status),
        attempts=row.attempts, next_attempt_at=row.next_attempt_at, last_error=row.last_error,
        erp_ref=row.erp_ref, acknowledged_at=row.acknowledged_at)


def _values(order: ErpOrder) -> dict[str, Any]:
    return dict(
        shop_id=order.shop_id, ticket_id=order.ticket_id, ticket_no=order.ticket_no, order_id=order.order_id,
        kind=order.kind.value, lines=[{"sku": ln.sku, "quantity": ln.quantity} for ln in order.lines],
        status=order.status.value, attempts=order.attempts, next_attempt_at=order.next_attempt_at,
        last_error=order.last_error, erp_ref=order.erp_ref, acknowledged_at=order.acknowledged_at)


class ErpOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, order: ErpOrder) -> bool:
        stmt = insert(ErpOrderRow).values(erp_order_id=order.erp_order_id, **_values(order)
                                          ).on_conflict_do_nothing().returning(ErpOrderRow.erp_order_id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def get(self, erp_order_id: uuid.UUID) -> ErpOrder | None:
        row = await self.session.get(ErpOrderRow, erp_order_id, with_for_update=True, populate_existing=True)
        return _order(row) if row else None

    async def due(self, now: datetime, skip: Quarantine, limit: int = 50) -> list[DueItem]:
        rows = (await self.session.execute(
            select(ErpOrderRow.erp_order_id, ErpOrderRow.order_id)
            .where(ErpOrderRow.status.in_(RETRYING), ErpOrderRow.next_attempt_at <= now,
                   skip.excluding(ErpOrderRow.erp_order_id))
            .order_by(ErpOrderRow.next_attempt_at).limit(limit))).all()
        return [DueItem(str(erp_order_id), order_id) for erp_order_id, order_id in rows]

    async def claim_due(self, erp_order_id: uuid.UUID, now: datetime) -> ErpOrder | None:
        row = (await self.session.execute(
            select(ErpOrderRow).where(ErpOrderRow.erp_order_id == erp_order_id,
                                      ErpOrderRow.status.in_(RETRYING),
                                      ErpOrderRow.next_attempt_at <= now)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True))).scalar_one_or_none()
        return _order(row) if row else None

    async def save(self, order: ErpOrder) -> None:
        row = await self.session.get(ErpOrderRow, order.erp_order_id)
        if row is None:
            raise LookupError(f"ERP order {order.erp_order_id} was not loaded")
        for name, value in _values(order).items():
            setattr(row, name, value)

    async def for_ticket(self, ticket_id: str) -> list[ErpOrder]:
        rows = (await self.session.execute(
            select(ErpOrderRow).where(ErpOrderRow.ticket_id == ticket_id).order_by(ErpOrderRow.kind)
            .with_for_update().execution_options(populate_existing=True))).scalars().all()
        return [_order(row) for row in rows]

    async def failed(self) -> list[ErpOrderRow]:
        """For ops (the CLI): orders (or their cancels) given up on, oldest first."""
        return list((await self.session.execute(
            select(ErpOrderRow).where(ErpOrderRow.status.in_(
                [ErpOrderStatus.FAILED.value, ErpOrderStatus.CANCEL_FAILED.value]))
            .order_by(ErpOrderRow.created_at))).scalars().all())
