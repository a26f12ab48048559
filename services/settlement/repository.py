"""The settlement worker's data: the orders it waits to enter (``uow.orders``) and the lines of
the merchants' statements (``uow.entries``)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import rows_of_orders
from services.common.tables import SettlementEntryRow, SettlementOrderRow
from services.common.uow import BatchRows, SqlUnitOfWork, UnitOfWork
from services.domain.settlement import Amounts, EntryKind, SettlementOrder, StatementEntry

SCHEMA = "0011"  # settlement_orders, settlement_entries


@dataclass(frozen=True)
class Entry:
    """A statement line to record: an order's settlement or an adjustment of it."""

    entry_id: uuid.UUID
    order_id: str
    shop_id: str
    ticket_id: str | None
    kind: EntryKind
    currency: str
    amounts: Amounts
    occurred_at: datetime


class SettlementOrders(Protocol):
    async def get(self, order_id: str) -> SettlementOrder:
        """Locked; a new, empty one for an order not seen yet (facts arrive in any order)."""

    async def save(self, order: SettlementOrder, entered_on: date | None = None) -> None: ...

    async def held(self, shop_id: str) -> list[SettlementOrder]:
        """The shop's orders with something to settle that are not in a statement yet."""


class Entries(Protocol):
    async def add(self, entry: Entry, entered_on: date | None) -> None:
        """Records the line once (its id is its event's: a redelivery adds nothing);
        ``entered_on`` None: it waits for its order."""

    async def enter_waiting(self, order_id: str, entered_on: date) -> None:
        """The order entered: the adjustments that waited for it enter with it."""

    async def statement(self, shop_id: str, first: date, last: date) -> list[StatementEntry]: ...


class SettlementUnitOfWork(UnitOfWork):
    orders: SettlementOrders
    entries: Entries


class SqlSettlementUnitOfWork(SqlUnitOfWork, SettlementUnitOfWork):
    """Every fact of an order reads, locks and writes its settlement order: a batch's orders are
    read and locked in one statement and written in one at commit, instead of three per fact."""

    orders: SettlementOrderRepository
    entries: EntryRepository

    def _open(self, session: AsyncSession) -> None:
        self.orders = SettlementOrderRepository(session)
        self.entries = EntryRepository(session)

    def _batch_rows(self) -> Sequence[BatchRows]:
        return (self.orders, self.entries)


def _order(row: SettlementOrderRow | Row[Any]) -> SettlementOrder:
    amounts = None if row.paid_cents is None else Amounts(row.paid_cents, row.subsidy_cents, row.fee_cents)
    return SettlementOrder(row.order_id, row.shop_id, row.currency, amounts, row.paid, row.completed, row.closed,
                           set(row.open_tickets), row.entered_on is not None)


class SettlementOrderRepository:
    """Keeps the orders it locked in this transaction, as last saved, and writes the changed ones
    once (``write``, before the commit): facts of one order in one batch cost no extra statement."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._locked: dict[str, tuple[SettlementOrder, date | None]] = {}  # with the day it entered
        self._changed: set[str] = set()

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """Reads and locks the known ones of these orders at once (a batch's): ``get`` finds them."""
        wanted = sorted(set(order_ids) - self._locked.keys())  # one lock order for every process
        if not wanted:
            return
        for row in await rows_of_orders(self.session, SettlementOrderRow, wanted, SettlementOrderRow.order_id):
            self._locked[row.order_id] = (_order(row), row.entered_on)

    async def get(self, order_id: str) -> SettlementOrder:
        if order_id not in self._locked:  # facts arrive in any order: the first one creates it
            await self.session.execute(insert(SettlementOrderRow).values(order_id=order_id).on_conflict_do_nothing())
            await self.read_batch([order_id])
        order = self._locked[order_id][0]
        return replace(order, open_tickets=set(order.open_tickets))  # the caller's to change

    async def save(self, order: SettlementOrder, entered_on: date | None = None) -> None:
        _, entered_before = self._locked[order.order_id]  # ``get`` locked it
        self._locked[order.order_id] = (replace(order, open_tickets=set(order.open_tickets)),
                                        entered_on or entered_before)
        self._changed.add(order.order_id)

    async def write(self) -> None:
        """One UPDATE statement for every order changed since the last write."""
        if not self._changed:
            return
        rows: list[dict[str, Any]] = []
        for order_id in sorted(self._changed):
            order, entered_on = self._locked[order_id]
            amounts = order.amounts
            rows.append({"order_id": order_id, "shop_id": order.shop_id, "currency": order.currency,
                         "paid": order.paid, "completed": order.completed, "closed": order.closed,
                         "open_tickets": sorted(order.open_tickets), "entered_on": entered_on,
                         "paid_cents": amounts.paid_cents if amounts else None,
                         "subsidy_cents": amounts.subsidy_cents if amounts else 0,
                         "fee_cents": amounts.fee_cents if amounts else 0})
        self._changed.clear()
        await self.session.execute(update(SettlementOrderRow), rows)  # by primary key, one executemany

    def forget(self) -> None:
        """A savepoint rolled back: read again what is needed (the rows stay locked)."""
        self._locked.clear()
        self._changed.clear()

    async def held(self, shop_id: str) -> list[SettlementOrder]:
        await self.write()
        row = SettlementOrderRow
        found = (await self.session.execute(select(row).where(
            row.shop_id == shop_id, row.entered_on.is_(None), row.paid_cents.is_not(None))
            .order_by(row.order_id))).scalars().all()
        return [order for order in map(_order, found) if order.held_because()]


_ENTRIES = SettlementEntryRow.__table__
# Built once, executed with every row kept back (one executemany each, pipelined by asyncpg)
_ADD_ENTRIES = insert(_ENTRIES).on_conflict_do_nothing()  # type: ignore[arg-type]
_ENTER_WAITING = (update(_ENTRIES)  # type: ignore[arg-type]
                  .where(_ENTRIES.c.order_id == bindparam("entering"), _ENTRIES.c.entered_on.is_(None))
                  .values(entered_on=bindparam("day")))


class EntryRepository:
    """Keeps a batch's new lines and the orders it entered, and writes them at the commit: the
    lines in one insert, then the waiting lines of the entered orders in one update (each had
    been a statement of its own, built anew: about a third of settlement's busy time)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._new: list[dict[str, Any]] = []
        self._entering: list[dict[str, Any]] = []

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """Nothing to read ahead: lines are only written while a batch runs."""

    async def add(self, entry: Entry, entered_on: date | None) -> None:
        amounts = entry.amounts
        self._new.append(dict(
            entry_id=entry.entry_id, order_id=entry.order_id, shop_id=entry.shop_id, ticket_id=entry.ticket_id,
            kind=entry.kind.value, currency=entry.currency, paid_cents=amounts.paid_cents,
            subsidy_cents=amounts.subsidy_cents, fee_cents=amounts.fee_cents, occurred_at=entry.occurred_at,
            entered_on=entered_on))

    async def enter_waiting(self, order_id: str, entered_on: date) -> None:
        self._entering.append({"entering": order_id, "day": entered_on})

    async def write(self) -> None:
        """The new lines first: one that waited for an order entered in the same batch is then
        entered by the update, as if each had been written at once."""
        new, self._new = self._new, []
        entering, self._entering = self._entering, []
        if new:
            await self.session.execute(_ADD_ENTRIES, new)
        if entering:
            await self.session.execute(_ENTER_WAITING, entering)

    def forget(self) -> None:
        """A savepoint rolled back: what it added or entered is dropped."""
        self._new.clear()
        self._entering.clear()

    async def statement(self, shop_id: str, first: date, last: date) -> list[StatementEntry]:
        await self.write()
        row = SettlementEntryRow
        in_cycle = select(row).where(row.shop_id == shop_id, row.entered_on >= first, row.entered_on <= last)
        found = (await self.session.execute(in_cycle.order_by(  # each order's entry before its adjustments
            row.entered_on, row.order_id, row.kind != EntryKind.ORDER.value, row.occurred_at))).scalars().all()
        return [StatementEntry(r.entered_on, r.order_id, r.ticket_id, EntryKind(r.kind), r.currency,
                               Amounts(r.paid_cents, r.subsidy_cents, r.fee_cents))
                for r in found if r.entered_on is not None]
