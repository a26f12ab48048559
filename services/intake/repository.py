"""Intake's data: the order projection, parked order events, the reasons catalogue, tickets;
and intake's unit of work, which hands them out (``uow.orders``, ``uow.reasons``, ``uow.tickets``)."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.parked import Parked
from services.common.tables import OrderRow, ParkedOrderEvent, ReasonRow
from services.common.tickets import Tickets, TicketStore
from services.common.uow import SqlUnitOfWork, UnitOfWork
from services.domain.model import AfterSalesType, OrderState
from services.domain.order import Order, OrderLine
from services.domain.reasons import Reason

SCHEMA = "0013"  # tickets.reissue and tickets.delivery_refused: the oldest schema this worker runs on

class Orders(Protocol):
    async def get(self, order_id: str, *, lock: bool = True) -> Order | None: ...

    async def add(self, order: Order) -> bool:
        """Inserts a new order; False if it already exists (a duplicate OrderPlaced)."""

    async def save(self, order: Order) -> None: ...

    async def park(self, order_id: str, event_id: uuid.UUID, type_name: str, value: bytes, reason: str) -> None: ...

    async def parked(self, order_id: str) -> list[Parked]:
        """What waits for this order, oldest first, locked."""

    async def unpark(self, parked_id: int) -> None: ...


class Reasons(Protocol):
    async def get(self, ticket_type: AfterSalesType, code: str) -> Reason | None:
        """The catalogue's source of truth (never a cache): acceptance reads here."""

    async def listing(self, ticket_type: AfterSalesType, *, include_hidden: bool = False) -> list[Reason]: ...

    async def upsert(self, ticket_type: AfterSalesType, code: str, label: str, *, visible: bool = True,
                     position: int | None = None) -> None: ...

    async def set_visible(self, ticket_type: AfterSalesType, code: str, visible: bool) -> bool: ...

    async def delete(self, ticket_type: AfterSalesType, code: str) -> bool: ...

    async def reorder(self, ticket_type: AfterSalesType, codes: list[str]) -> None: ...


class IntakeUnitOfWork(UnitOfWork):
    tickets: Tickets
    orders: Orders
    reasons: Reasons


class SqlIntakeUnitOfWork(SqlUnitOfWork, IntakeUnitOfWork):
    def _open(self, session: AsyncSession) -> None:
        self.tickets = TicketStore(session)
        self.orders = OrderRepository(session)
        self.reasons = ReasonRepository(session)


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: str, *, lock: bool = True) -> Order | None:
        stmt = (select(OrderRow).where(OrderRow.order_id == order_id)
                .execution_options(populate_existing=True))  # saves are Core UPDATEs: reload
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        if row is None:
            return None
        return Order(
            order_id=row.order_id, shop_id=row.shop_id, buyer_id=row.buyer_id,
            placed_at=row.placed_at, lines=[OrderLine(**ln) for ln in row.lines],
            shipping_fee_cents=row.shipping_fee_cents, platform_subsidy_cents=row.platform_subsidy_cents,
            platform_fee_cents=row.platform_fee_cents, state=OrderState(row.state), paid_at=row.paid_at,
            shipped_at=row.shipped_at, completed_at=row.completed_at, closed_at=row.closed_at,
            close_requested=row.close_requested, version=row.version, currency=row.currency)

    async def add(self, order: Order) -> bool:
        """Inserts a new order; False if it already exists (a duplicate OrderPlaced)."""
        stmt = insert(OrderRow).values(**self._values(order)).on_conflict_do_nothing().returning(
            OrderRow.order_id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def save(self, order: Order) -> None:
        await self.session.execute(update(OrderRow).where(OrderRow.order_id == order.order_id)
                                   .values(**self._values(order)))

    @staticmethod
    def _values(order: Order) -> dict[str, Any]:
        return dict(
            order_id=order.order_id, shop_id=order.shop_id, buyer_id=order.buyer_id,
            state=order.state.value, placed_at=order.placed_at, paid_at=order.paid_at,
            shipped_at=order.shipped_at, completed_at=order.completed_at, closed_at=order.closed_at,
            shipping_fee_cents=order.shipping_fee_cents,
            platform_subsidy_cents=order.platform_subsidy_cents,
            platform_fee_cents=order.platform_fee_cents, close_requested=order.close_requested,
            currency=order.currency,
            lines=[{"line_no": ln.line_no, "sku": ln.sku, "quantity": ln.quantity,
                    "unit_price_cents": ln.unit_price_cents, "paid_cents": ln.paid_cents,
                    "category": ln.category, "coupon_cents": ln.coupon_cents,
                    "points_cents": ln.points_cents} for ln in order.lines],
            version=order.version)

    async def park(self, order_id: str, event_id: uuid.UUID, type_name: str, value: bytes,
                   reason: str) -> None:
        await self.session.execute(insert(ParkedOrderEvent).values(
            order_id=order_id, event_id=event_id, type=type_name, value=value, reason=reason
        ).on_conflict_do_nothing())

    async def parked(self, order_id: str) -> list[Parked]:
        rows = (await self.session.execute(
            select(ParkedOrderEvent).where(ParkedOrderEvent.order_id == order_id)
            .order_by(ParkedOrderEvent.id).with_for_update())).scalars().all()
        return [Parked.of(r) for r in rows]

    async def unpark(self, parked_id: int) -> None:
        await self.session.execute(delete(ParkedOrderEvent).where(ParkedOrderEvent.id == parked_id))


class ReasonRepository:
    """The catalogue's source of truth. Acceptance always reads here, never a cache."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, ticket_type: AfterSalesType, code: str) -> Reason | None:
        row = await self.session.get(ReasonRow, (ticket_type.value, code))
        return None if row is None else Reason(row.code, row.label, (ticket_type,), row.visible, row.position)

    async def listing(self, ticket_type: AfterSalesType, *, include_hidden: bool = False) -> list[Reason]:
        stmt = select(ReasonRow).where(ReasonRow.type == ticket_type.value).order_by(ReasonRow.position)
        if not include_hidden:
            stmt = stmt.where(ReasonRow.visible.is_(True))
        return [Reason(r.code, r.label, (ticket_type,), r.visible, r.position)
                for r in (await self.session.execute(stmt)).scalars().all()]

    async def upsert(self, ticket_type: AfterSalesType, code: str, label: str, *, visible: bool = True,
                     position: int | None = None) -> None:
        if position is None:
            current = await self.listing(ticket_type, include_hidden=True)
            position = max((r.position for r in current), default=0) + 1
        stmt = insert(ReasonRow).values(type=ticket_type.value, code=code, label=label, visible=visible,
                                        position=position)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[ReasonRow.type, ReasonRow.code],
            set_={"label": label, "visible": visible, "position": position}))

    async def set_visible(self, ticket_type: AfterSalesType, code: str, visible: bool) -> bool:
        result = await self.session.execute(update(ReasonRow).where(
            ReasonRow.type == ticket_type.value, ReasonRow.code == code).values(visible=visible))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def delete(self, ticket_type: AfterSalesType, code: str) -> bool:
        result = await self.session.execute(delete(ReasonRow).where(
            ReasonRow.type == ticket_type.value, ReasonRow.code == code))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def reorder(self, ticket_type: AfterSalesType, codes: list[str]) -> None:
        for position, code in enumerate(codes, start=1):
            await self.session.execute(update(ReasonRow).where(
                ReasonRow.type == ticket_type.value, ReasonRow.code == code).values(position=position))

    async def is_empty(self) -> bool:
        return (await self.session.execute(select(ReasonRow.code).limit(1))).first() is None
