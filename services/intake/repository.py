"""Intake's data: the order projection, parked order events, the reasons catalogue, tickets;
and intake's unit of work, which hands them out (``uow.orders``, ``uow.reasons``, ``uow.tickets``)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import rows_of_orders
from services.common.parked import Parked
from services.common.tables import OrderRow, ParkedOrderEvent, ReasonRow
from services.common.tickets import Tickets, TicketStore
from services.common.uow import BatchRows, SqlUnitOfWork, UnitOfWork
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
    """A batch's orders, what is parked for them and their tickets are locked in three statements;
    each fact or request then finds its order and the order's tickets without one (a request read
    the tickets by request id and then by order, two statements each, before)."""

    orders: OrderRepository
    tickets: TicketStore

    def _open(self, session: AsyncSession) -> None:
        self.tickets = TicketStore(session, self.stage)
        self.orders = OrderRepository(session)
        self.reasons = ReasonRepository(session)

    def _batch_rows(self) -> Sequence[BatchRows]:
        return (self.orders, self.tickets)  # tickets after orders: intake's lock order


_ORDERS = OrderRow.__table__
# Built once and executed with each order's values: building ``insert(...).values(**order)`` per
# message turned every value into an expression and was two fifths of projecting an order.
_ADD_ORDER = insert(_ORDERS).on_conflict_do_nothing().returning(_ORDERS.c.order_id)  # type: ignore[arg-type]
_ADD_ORDERS = insert(_ORDERS).on_conflict_do_nothing()  # type: ignore[arg-type]
_SAVE_ORDER = update(_ORDERS).where(_ORDERS.c.order_id == bindparam("key"))  # type: ignore[arg-type]


def _copy(order: Order) -> Order:
    """An order to keep or hand out: its lines are the only mutable parts."""
    return replace(order, lines=[replace(line) for line in order.lines], _lines_by_no={})


def _order(row: OrderRow | Row[Any]) -> Order:
    return Order(
        order_id=row.order_id, shop_id=row.shop_id, buyer_id=row.buyer_id,
        placed_at=row.placed_at, lines=[OrderLine(**ln) for ln in row.lines],
        shipping_fee_cents=row.shipping_fee_cents, platform_subsidy_cents=row.platform_subsidy_cents,
        platform_fee_cents=row.platform_fee_cents, state=OrderState(row.state), paid_at=row.paid_at,
        shipped_at=row.shipped_at, completed_at=row.completed_at, closed_at=row.closed_at,
        close_requested=row.close_requested, version=row.version, currency=row.currency)


class OrderRepository:
    """Keeps the orders and parked rows it locked for a batch (``read_batch``), current with what it
    writes; an order it does not keep is read, as before, each time. A new order of the batch is
    inserted with the others in one statement (``write``, before the commit): the batch knows
    it is new, as its read found no row, and the inbox lets one transaction at a time apply its
    OrderPlaced."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._orders: dict[str, Order] = {}  # locked in this transaction, as last written
        self._parked: dict[str, list[Parked]] = {}  # every parked row of these orders, locked
        self._new: dict[str, Order] = {}  # added in this batch, not inserted yet

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """The orders, then what is parked for them (intake's lock order), two statements for all."""
        wanted = sorted(set(order_ids) - self._parked.keys())
        if not wanted:
            return
        for row in await rows_of_orders(self.session, OrderRow, wanted, OrderRow.order_id):
            self._orders[row.order_id] = _order(row)
        for order_id in wanted:
            self._parked[order_id] = []
        for waiting in await rows_of_orders(self.session, ParkedOrderEvent, wanted, ParkedOrderEvent.id):
            self._parked[waiting.order_id].append(Parked.of(waiting))

    def forget(self) -> None:
        """A savepoint rolled back: read again what is needed (the rows stay locked)."""
        self._orders.clear()
        self._parked.clear()
        self._new.clear()

    async def get(self, order_id: str, *, lock: bool = True) -> Order | None:
        if order_id in self._orders:
            return _copy(self._orders[order_id])
        stmt = (select(OrderRow).where(OrderRow.order_id == order_id)
                .execution_options(populate_existing=True))  # saves are Core UPDATEs: reload
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return None if row is None else _order(row)

    async def add(self, order: Order) -> bool:
        """Inserts a new order; False if it already exists (a duplicate OrderPlaced)."""
        if order.order_id in self._orders:
            return False
        if order.order_id in self._parked:  # read for this batch and not found: new
            self._orders[order.order_id] = self._new[order.order_id] = _copy(order)
            return True
        added = (await self.session.execute(_ADD_ORDER, self._values(order))).scalar_one_or_none() is not None
        if added and order.order_id in self._parked:
            self._orders[order.order_id] = _copy(order)
        return added

    async def save(self, order: Order) -> None:
        if order.order_id in self._new:
            self._orders[order.order_id] = self._new[order.order_id] = _copy(order)
            return
        await self.session.execute(_SAVE_ORDER, {"key": order.order_id, **self._values(order)})
        if order.order_id in self._orders:
            self._orders[order.order_id] = _copy(order)

    async def write(self) -> None:
        """Inserts the batch's new orders, one statement for all."""
        if self._new:
            new, self._new = self._new, {}
            await self.session.execute(_ADD_ORDERS, [self._values(order) for _, order in sorted(new.items())])

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
        parked = await self.session.execute(insert(ParkedOrderEvent).values(
            order_id=order_id, event_id=event_id, type=type_name, value=value, reason=reason
        ).on_conflict_do_nothing().returning(ParkedOrderEvent.id))
        new_id = parked.scalar_one_or_none()
        if new_id is not None and order_id in self._parked:
            self._parked[order_id].append(Parked(new_id, order_id, event_id, type_name, value, reason))

    async def parked(self, order_id: str) -> list[Parked]:
        if order_id in self._parked:
            return list(self._parked[order_id])
        rows = (await self.session.execute(
            select(ParkedOrderEvent).where(ParkedOrderEvent.order_id == order_id)
            .order_by(ParkedOrderEvent.id).with_for_update())).scalars().all()
        return [Parked.of(r) for r in rows]

    async def unpark(self, parked_id: int) -> None:
        await self.session.execute(delete(ParkedOrderEvent).where(ParkedOrderEvent.id == parked_id))
        for waiting in self._parked.values():
            waiting[:] = [p for p in waiting if p.id != parked_id]


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
