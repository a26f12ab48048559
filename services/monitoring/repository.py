"""Monitoring's data: what it keeps of orders and tickets, its daily figures, work items, buyer
flags and line states; and its unit of work (``uow.monitoring``)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Row, Table, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import rows_of_orders
from services.common.quarantine import DueItem, Quarantine
from services.common.tables import (
    MonitoringBuyerFlagRow,
    MonitoringCounterRow,
    MonitoringDirtyDayRow,
    MonitoringLineRow,
    MonitoringOrderRow,
    MonitoringStateTimeRow,
    MonitoringTicketRow,
    MonitoringWorkItemRow,
)
from services.common.uow import BatchRows, SqlUnitOfWork, UnitOfWork
from services.domain.figures import TimeInState
from services.domain.line_state import InProgress, Line
from services.domain.model import AfterSalesType
from services.domain.serial_returner import ReturnerFlag
from services.domain.work_queue import ItemState, Severity, WorkItem

SCHEMA = "0008"  # monitoring's own tables


@dataclass
class OrderFacts:
    order_id: str
    shop_id: str
    buyer_id: str
    placed_at: datetime
    lines: list[dict[str, Any]]  # line_no, sku, category, quantity

    def category(self, line_no: int) -> str:
        return next((str(ln["category"]) for ln in self.lines if ln["line_no"] == line_no), "")


@dataclass
class TrackedTicket:
    ticket_id: str
    order_id: str
    shop_id: str
    buyer_id: str
    type: str
    reason_code: str
    status: str
    status_since: datetime
    opened_at: datetime


class Monitoring(Protocol):
    async def add_order(self, order: OrderFacts) -> bool:
        """False when the order is known already."""

    async def order(self, order_id: str) -> OrderFacts | None: ...

    async def ticket(self, ticket_id: str) -> TrackedTicket | None:
        """Locked: one change of a ticket at a time."""

    async def save_ticket(self, ticket: TrackedTicket) -> None: ...

    async def time_in_state(self, ticket: TrackedTicket, left_at: datetime) -> None:
        """Records how long the ticket spent in its current status, which it leaves now."""

    async def count(self, shop_id: str, day: date, metric: str, key1: str = "", key2: str = "", n: int = 1) -> None:
        """Adds ``n`` to a figure and marks the shop's day as changed (to publish)."""

    async def buyer_activity(self, shop_id: str, buyer_id: str, since: datetime) -> tuple[int, int]:
        """(tickets opened, orders placed) by the buyer in the shop since ``since``."""

    async def flag_buyer(self, shop_id: str, buyer_id: str, ticket_id: str, flag: ReturnerFlag,
                         at: datetime) -> None: ...

    async def active_item(self, condition: str) -> WorkItem | None:
        """The unresolved item of a condition, locked."""

    async def times_opened(self, condition: str) -> int:
        """How many items this condition has had (resolved ones too)."""

    async def item(self, item_id: uuid.UUID) -> WorkItem | None:
        """Locked."""

    async def save_item(self, item: WorkItem) -> None: ...

    async def escalations_due(self, now: datetime, skip: Quarantine) -> list[DueItem]: ...

    async def line(self, order_id: str, line_no: int) -> Line | None:
        """Locked."""

    async def save_line(self, line: Line) -> None: ...

    async def changed_days(self, limit: int = 100) -> list[tuple[str, date]]: ...

    async def claim_changed_day(self, shop_id: str, day: date) -> bool:
        """Takes the day off the changed list (False if another replica took it)."""

    async def day_figures(self, shop_id: str, day: date) -> list[tuple[str, str, str, int]]:
        """Every (metric, key1, key2, value) of the shop's day."""

    async def counters_between(self, shop_id: str | None, first: date, last: date,
                               ) -> list[tuple[str, str, str, int]]:
        """(metric, key1, key2, value) summed over the days (and shops, when ``shop_id`` is None)."""

    async def time_in_states(self, shop_id: str | None, since: datetime, until: datetime) -> list[TimeInState]:
        """p50 / p95 / max per state of the stays that ended in [since, until)."""

    async def work_items(self, states: tuple[ItemState, ...], owner: str | None, limit: int,
                         order_id: str | None = None) -> list[WorkItem]:
        """Newest first; ``order_id``: one order's items only."""


class MonitoringUnitOfWork(UnitOfWork):
    monitoring: Monitoring


class SqlMonitoringUnitOfWork(SqlUnitOfWork, MonitoringUnitOfWork):
    """Monitoring hears every fact of every order: a batch's orders, lines and tickets are read in
    three statements, and its figures are added up in memory and written in one at commit."""

    monitoring: MonitoringRepository

    def _open(self, session: AsyncSession) -> None:
        self.monitoring = MonitoringRepository(session)

    def _batch_rows(self) -> Sequence[BatchRows]:
        return (self.monitoring,)


def _item(row: MonitoringWorkItemRow) -> WorkItem:
    return WorkItem(
        item_id=row.item_id, condition=row.condition, kind=row.kind, severity=Severity(row.severity),
        owner=row.owner, order_id=row.order_id, ticket_id=row.ticket_id, message=row.message,
        opened_at=row.opened_at, last_seen_at=row.last_seen_at, ack_due_at=row.ack_due_at,
        state=ItemState(row.state), occurrences=row.occurrences, escalations=row.escalations,
        acknowledged_at=row.acknowledged_at, acknowledged_by=row.acknowledged_by, resolved_at=row.resolved_at,
        resolved_by=row.resolved_by, note=row.note)


def _line(row: MonitoringLineRow | Row[Any]) -> Line:
    return Line(order_id=row.order_id, line_no=row.line_no, sku=row.sku, quantity=row.quantity,
                in_progress=tuple(InProgress(p["ticket_id"], AfterSalesType(p["type"]), p["units"])
                                  for p in row.in_progress),
                refunded_units=row.refunded_units, refunded_cents=row.refunded_cents,
                cancelled_units=row.cancelled_units, exchanged_units=row.exchanged_units,
                repaired_units=row.repaired_units, currency=row.currency, ticket_ids_done=tuple(row.tickets_done))


# Upserts built once and executed with each row's values (building them per message, with a bound
# expression for every value, cost more than running them).
_TICKETS, _LINES, _ORDERS = (cast(Table, row.__table__)
                             for row in (MonitoringTicketRow, MonitoringLineRow, MonitoringOrderRow))
_TRACK_TICKET = insert(_TICKETS).on_conflict_do_update(index_elements=["ticket_id"], set_={
    "status": insert(_TICKETS).excluded.status, "status_since": insert(_TICKETS).excluded.status_since})
_LINE_COLUMNS = ("sku", "quantity", "currency", "in_progress", "tickets_done", "refunded_units", "refunded_cents",
                 "cancelled_units", "exchanged_units", "repaired_units", "state")
_SAVE_LINE = insert(_LINES).on_conflict_do_update(index_elements=["order_id", "line_no"], set_={
    name: getattr(insert(_LINES).excluded, name) for name in _LINE_COLUMNS})
_ADD_ORDER = insert(_ORDERS).on_conflict_do_nothing().returning(_ORDERS.c.order_id)
# The serial-returner rule's two counts, in one statement built once (each served by its
# (shop, buyer, time) index): it runs for every ticket opened
_BUYER_ACTIVITY = select(*(
    select(func.count()).select_from(table).where(
        table.c.shop_id == bindparam("shop_id"), table.c.buyer_id == bindparam("buyer_id"),
        when >= bindparam("since")).scalar_subquery()
    for table, when in ((_TICKETS, _TICKETS.c.opened_at), (_ORDERS, _ORDERS.c.placed_at))))


def _tracked(row: MonitoringTicketRow | Row[Any]) -> TrackedTicket:
    return TrackedTicket(row.ticket_id, row.order_id, row.shop_id, row.buyer_id, row.type, row.reason_code,
                         row.status, row.status_since, row.opened_at)


def _facts(row: MonitoringOrderRow | Row[Any]) -> OrderFacts:
    return OrderFacts(row.order_id, row.shop_id, row.buyer_id, row.placed_at, row.lines)


class MonitoringRepository:
    """Keeps what it read of the orders a batch names (``read_batch``), current with what it saves,
    and adds figures up in memory until ``write`` (before the commit and before any read of
    them), so a batch costs a few statements per table rather than a few per message."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._read: set[str] = set()  # orders read ahead: what is not kept of them does not exist
        self._orders: dict[str, OrderFacts] = {}
        self._lines: dict[tuple[str, int], Line] = {}  # locked
        self._tickets: dict[str, TrackedTicket] = {}  # locked
        self._saved: dict[str, TrackedTicket] = {}  # tickets saved since the last write, as last saved
        self._counts: Counter[tuple[str, date, str, str, str]] = Counter()
        self._days: set[tuple[str, date]] = set()  # changed days not written yet

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """The orders, their lines and their tickets, three statements for all; lines and tickets
        locked (in one order for every process), as ``line`` and ``ticket`` lock them one by one."""
        wanted = sorted(set(order_ids) - self._read)
        if not wanted:
            return
        self._read.update(wanted)
        for order in await rows_of_orders(self.session, MonitoringOrderRow, wanted, lock=False):
            self._orders[order.order_id] = _facts(order)
        for line in await rows_of_orders(self.session, MonitoringLineRow, wanted,
                                         MonitoringLineRow.order_id, MonitoringLineRow.line_no):
            self._lines[line.order_id, line.line_no] = _line(line)
        for ticket in await rows_of_orders(self.session, MonitoringTicketRow, wanted, MonitoringTicketRow.ticket_id):
            self._tickets[ticket.ticket_id] = _tracked(ticket)

    def forget(self) -> None:
        """A savepoint rolled back: its figures are undone and the rest is read again."""
        self._read.clear()
        self._orders.clear()
        self._lines.clear()
        self._tickets.clear()
        self._saved.clear()
        self._counts.clear()
        self._days.clear()

    async def add_order(self, order: OrderFacts) -> bool:
        added = await self.session.execute(_ADD_ORDER, {
            "order_id": order.order_id, "shop_id": order.shop_id, "buyer_id": order.buyer_id,
            "placed_at": order.placed_at, "lines": order.lines})
        if added.first() is None:
            return False
        self._orders[order.order_id] = order
        return True

    async def order(self, order_id: str) -> OrderFacts | None:
        if order_id in self._read or order_id in self._orders:
            return self._orders.get(order_id)
        row = await self.session.get(MonitoringOrderRow, order_id)
        return None if row is None else _facts(row)

    async def ticket(self, ticket_id: str) -> TrackedTicket | None:
        if ticket_id in self._saved:
            return replace(self._saved[ticket_id])
        if ticket_id in self._tickets:
            return replace(self._tickets[ticket_id])
        row = await self.session.get(MonitoringTicketRow, ticket_id, with_for_update=True)
        return None if row is None else _tracked(row)

    async def save_ticket(self, ticket: TrackedTicket) -> None:
        """Kept back until ``write``: a ticket's every change in a batch costs one row of one
        statement (the row's first values with its last status, as saving each would leave it)."""
        self._saved[ticket.ticket_id] = replace(ticket)
        if ticket.ticket_id in self._tickets or ticket.order_id in self._read:
            self._tickets[ticket.ticket_id] = replace(ticket)  # it stays as its first row, but with this status

    async def time_in_state(self, ticket: TrackedTicket, left_at: datetime) -> None:
        self.session.add(MonitoringStateTimeRow(
            shop_id=ticket.shop_id, ticket_id=ticket.ticket_id, status=ticket.status, entered_at=ticket.status_since,
            left_at=left_at, seconds=max((left_at - ticket.status_since).total_seconds(), 0.0)))

    async def count(self, shop_id: str, day: date, metric: str, key1: str = "", key2: str = "", n: int = 1) -> None:
        self._counts[shop_id, day, metric, key1[:128], key2[:128]] += n
        self._days.add((shop_id, day))

    async def _write_tickets(self) -> None:
        if self._saved:
            rows = [vars(ticket).copy() for _, ticket in sorted(self._saved.items())]  # one lock order
            self._saved.clear()
            await self.session.execute(_TRACK_TICKET, rows)

    async def write(self) -> None:
        """Writes the tickets saved since the last write, adds the figures counted since then to
        their rows (one upsert for all, in one row order for every process) and marks their days
        as changed."""
        await self._write_tickets()
        if self._counts:
            rows = [{"shop_id": shop_id, "day": day, "metric": metric, "key1": key1, "key2": key2, "value": n}
                    for (shop_id, day, metric, key1, key2), n in sorted(self._counts.items())]
            self._counts.clear()
            stmt = insert(MonitoringCounterRow)
            await self.session.execute(stmt.on_conflict_do_update(
                index_elements=["shop_id", "day", "metric", "key1", "key2"],
                set_={"value": MonitoringCounterRow.value + stmt.excluded.value}), rows)
        if self._days:
            days = [{"shop_id": shop_id, "day": day} for shop_id, day in sorted(self._days)]
            self._days.clear()
            await self.session.execute(insert(MonitoringDirtyDayRow).on_conflict_do_nothing(), days)

    async def buyer_activity(self, shop_id: str, buyer_id: str, since: datetime) -> tuple[int, int]:
        """Both counts in one statement; the tickets saved in this batch are written first, so
        they count (the ticket just opened among them)."""
        await self._write_tickets()
        counted = (await self.session.execute(
            _BUYER_ACTIVITY, {"shop_id": shop_id, "buyer_id": buyer_id, "since": since})).one()
        return int(counted[0]), int(counted[1])

    async def flag_buyer(self, shop_id: str, buyer_id: str, ticket_id: str, flag: ReturnerFlag,
                         at: datetime) -> None:
        values = {"ticket_id": ticket_id, "flagged_at": at, "window_days": flag.window_days,
                  "tickets_in_window": flag.tickets_in_window, "orders_in_window": flag.orders_in_window,
                  "max_tickets": flag.max_tickets, "max_rate_percent": flag.max_rate_percent,
                  "min_orders": flag.min_orders, "reason": flag.reason[:300]}
        await self.session.execute(insert(MonitoringBuyerFlagRow).values(shop_id=shop_id, buyer_id=buyer_id, **values)
                                   .on_conflict_do_update(index_elements=["shop_id", "buyer_id"], set_=values))

    async def active_item(self, condition: str) -> WorkItem | None:
        row = (await self.session.execute(select(MonitoringWorkItemRow).where(
            MonitoringWorkItemRow.condition == condition, MonitoringWorkItemRow.state != ItemState.RESOLVED.value)
            .with_for_update())).scalar_one_or_none()
        return None if row is None else _item(row)

    async def times_opened(self, condition: str) -> int:
        return (await self.session.execute(select(func.count()).select_from(MonitoringWorkItemRow).where(
            MonitoringWorkItemRow.condition == condition))).scalar_one()

    async def item(self, item_id: uuid.UUID) -> WorkItem | None:
        row = await self.session.get(MonitoringWorkItemRow, item_id, with_for_update=True)
        return None if row is None else _item(row)

    async def save_item(self, item: WorkItem) -> None:
        values = {k: v for k, v in vars(item).items() if k != "changes"}
        values["severity"], values["state"] = item.severity.value, item.state.value
        await self.session.execute(insert(MonitoringWorkItemRow).values(**values).on_conflict_do_update(
            index_elements=["item_id"], set_={k: v for k, v in values.items() if k != "item_id"}))

    async def escalations_due(self, now: datetime, skip: Quarantine) -> list[DueItem]:
        rows = (await self.session.execute(select(MonitoringWorkItemRow.item_id, MonitoringWorkItemRow.order_id).where(
            MonitoringWorkItemRow.state == ItemState.OPEN.value, MonitoringWorkItemRow.ack_due_at <= now,
            skip.excluding(MonitoringWorkItemRow.item_id))
            .order_by(MonitoringWorkItemRow.ack_due_at).limit(500))).all()
        return [DueItem(str(r.item_id), r.order_id) for r in rows]

    async def line(self, order_id: str, line_no: int) -> Line | None:
        if order_id in self._read:
            return self._lines.get((order_id, line_no))
        row = await self.session.get(MonitoringLineRow, (order_id, line_no), with_for_update=True)
        return None if row is None else _line(row)

    async def save_line(self, line: Line) -> None:
        values = {"sku": line.sku, "quantity": line.quantity, "currency": line.currency,
                  "in_progress": [{"ticket_id": p.ticket_id, "type": p.type.value, "units": p.units}
                                  for p in line.in_progress],
                  "tickets_done": list(line.ticket_ids_done), "refunded_units": line.refunded_units,
                  "refunded_cents": line.refunded_cents, "cancelled_units": line.cancelled_units,
                  "exchanged_units": line.exchanged_units, "repaired_units": line.repaired_units,
                  "state": line.state.value}
        await self.session.execute(_SAVE_LINE, {"order_id": line.order_id, "line_no": line.line_no, **values})
        if line.order_id in self._read:
            self._lines[line.order_id, line.line_no] = line

    async def changed_days(self, limit: int = 100) -> list[tuple[str, date]]:
        rows = (await self.session.execute(select(MonitoringDirtyDayRow.shop_id, MonitoringDirtyDayRow.day)
                                           .order_by(MonitoringDirtyDayRow.day).limit(limit))).all()
        return [(r.shop_id, r.day) for r in rows]

    async def claim_changed_day(self, shop_id: str, day: date) -> bool:
        deleted = await self.session.execute(delete(MonitoringDirtyDayRow).where(
            MonitoringDirtyDayRow.shop_id == shop_id, MonitoringDirtyDayRow.day == day)
            .returning(MonitoringDirtyDayRow.day))
        return deleted.first() is not None

    async def day_figures(self, shop_id: str, day: date) -> list[tuple[str, str, str, int]]:
        await self.write()
        rows = (await self.session.execute(select(
            MonitoringCounterRow.metric, MonitoringCounterRow.key1, MonitoringCounterRow.key2,
            MonitoringCounterRow.value).where(MonitoringCounterRow.shop_id == shop_id,
                                              MonitoringCounterRow.day == day))).all()
        return [(r.metric, r.key1, r.key2, int(r.value)) for r in rows]

    async def counters_between(self, shop_id: str | None, first: date, last: date,
                               ) -> list[tuple[str, str, str, int]]:
        await self.write()
        counter = MonitoringCounterRow
        query = (select(counter.metric, counter.key1, counter.key2, func.sum(counter.value).label("value"))
                 .where(counter.day >= first, counter.day <= last)
                 .group_by(counter.metric, counter.key1, counter.key2))
        if shop_id is not None:
            query = query.where(counter.shop_id == shop_id)
        return [(r.metric, r.key1, r.key2, int(r.value)) for r in (await self.session.execute(query)).all()]

    async def time_in_states(self, shop_id: str | None, since: datetime, until: datetime) -> list[TimeInState]:
        stay = MonitoringStateTimeRow
        query = (select(stay.status, func.count().label("tickets"),
                        func.percentile_disc(0.5).within_group(stay.seconds).label("p50"),
                        func.percentile_disc(0.95).within_group(stay.seconds).label("p95"),
                        func.max(stay.seconds).label("longest"))
                 .where(stay.left_at >= since, stay.left_at < until).group_by(stay.status).order_by(stay.status))
        if shop_id is not None:
            query = query.where(stay.shop_id == shop_id)
        return [TimeInState(r.status, int(r.tickets), float(r.p50), float(r.p95), float(r.longest))
                for r in (await self.session.execute(query)).all()]

    async def work_items(self, states: tuple[ItemState, ...], owner: str | None, limit: int,
                         order_id: str | None = None) -> list[WorkItem]:
        query = (select(MonitoringWorkItemRow).where(MonitoringWorkItemRow.state.in_([s.value for s in states]))
                 .order_by(MonitoringWorkItemRow.opened_at.desc()).limit(limit))
        if owner is not None:
            query = query.where(MonitoringWorkItemRow.owner == owner)
        if order_id is not None:
            query = query.where(MonitoringWorkItemRow.order_id == order_id)
        return [_item(row) for row in (await self.session.execute(query)).scalars()]
