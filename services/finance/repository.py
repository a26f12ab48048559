"""Finance's data: refunds (one per money decision), the per-order refund ledger, compensations,
its own copy of what each order paid, and finance's unit of work, which hands them out
(``uow.refunds``, ``uow.ledgers``, ``uow.orders``, …).

Finance owns ``refunds``, ``refund_ledger``, ``compensations`` and ``finance_orders`` (see
``services/common/tables.py``). What an order paid comes from the OrderPlaced events finance
consumes into ``finance_orders``, never from intake's projection. The ledger row is created from
that copy the first time an order is refunded and is locked (``FOR UPDATE``) for every
reservation, so per-line sums are checked serially.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import rows_of_orders
from services.common.quarantine import DueItem, Quarantine
from services.common.tables import CompensationRow, PaidOrderRow, RefundLedgerRow, RefundRow
from services.common.tickets import Tickets, TicketStore
from services.common.uow import BatchRows, SqlUnitOfWork, UnitOfWork
from services.domain.order import OrderLine
from services.domain.refund import Compensation, Refund, RefundLine, RefundStatus
from services.domain.refunds import LedgerLine, RefundLedger, settlement

SCHEMA = "0013"  # tickets.reissue and .delivery_refused, and the ledger's settled refunds (0011)


@dataclass(frozen=True)
class PaidOrder:
    """What an order paid, as finance recorded it from OrderPlaced: the ledger's paid amounts
    and the coupon and points shares of a compensation are computed from it."""

    order_id: str
    shop_id: str
    lines: tuple[OrderLine, ...]
    shipping_fee_cents: int = 0
    platform_subsidy_cents: int = 0
    platform_fee_cents: int = 0
    currency: str = "CNY"

    def line(self, line_no: int) -> OrderLine:
        return next(ln for ln in self.lines if ln.line_no == line_no)

    @property
    def paid_cents(self) -> int:
        return sum(ln.paid_cents for ln in self.lines) + self.shipping_fee_cents


class Refunds(Protocol):
    async def for_ticket(self, ticket_id: str, order_id: str) -> Refund | None:
        """The ticket (of that order)'s refund, locked."""

    async def ticket_of(self, refund_id: uuid.UUID) -> str | None:
        """Without a lock: the caller locks the ticket first (finance's lock order)."""

    async def get(self, refund_id: uuid.UUID) -> Refund | None:
        """Locked."""

    async def add(self, refund: Refund) -> None: ...

    async def save(self, refund: Refund) -> None: ...

    async def due(self, now: datetime, skip: Quarantine) -> list[DueItem]:
        """PENDING refunds whose answer is overdue, oldest first (no locks)."""


class Ledgers(Protocol):
    async def get(self, order_id: str) -> RefundLedger:
        """The order's ledger, locked; created from finance's copy of the order on first use."""

    async def save(self, ledger: RefundLedger) -> None: ...


class Compensations(Protocol):
    async def add(self, compensation: Compensation) -> bool:
        """False if the ticket already has one (a redelivered success)."""

    async def get(self, compensation_id: uuid.UUID) -> Compensation | None: ...

    async def save(self, compensation: Compensation) -> None: ...


class PaidOrders(Protocol):
    async def record(self, order: PaidOrder) -> None:
        """Keeps the first copy: an OrderPlaced never changes, a redelivery changes nothing."""

    async def known(self, order_id: str) -> bool:
        """Whether finance has consumed the order's OrderPlaced yet."""

    async def get(self, order_id: str) -> PaidOrder:
        """``LookupError`` if finance has no copy (callers ask ``known`` first)."""


class FinanceUnitOfWork(UnitOfWork):
    tickets: Tickets
    refunds: Refunds
    ledgers: Ledgers
    compensations: Compensations
    orders: PaidOrders


class SqlFinanceUnitOfWork(SqlUnitOfWork, FinanceUnitOfWork):
    """A batch's tickets, refunds and ledgers are locked in three statements, in finance's lock
    order (ticket, then refund, then ledger), and what its orders paid is read in a fourth: the
    use cases then find them without a statement each."""

    tickets: TicketStore
    refunds: RefundRepository
    ledgers: LedgerRepository
    orders: PaidOrderRepository

    def _open(self, session: AsyncSession) -> None:
        self.tickets = TicketStore(session, self.stage)
        self.refunds = RefundRepository(session)
        self.orders = PaidOrderRepository(session)
        self.ledgers = LedgerRepository(session, self.orders)
        self.compensations = CompensationRepository(session)

    def _batch_rows(self) -> Sequence[BatchRows]:
        return (self.tickets, self.refunds, self.ledgers, self.orders)  # finance's lock order


def _refund(row: Row[Any]) -> Refund:
    return Refund(
        refund_id=row.refund_id, ticket_id=row.ticket_id, order_id=row.order_id,
        lines=tuple(RefundLine(ln["line_no"], ln["cents"], ln["units"]) for ln in row.lines),
        shipping_cents=row.shipping_cents, status=RefundStatus(row.status), attempts=row.attempts,
        next_attempt_at=row.next_attempt_at, last_error=row.last_error, channel_ref=row.channel_ref,
        completed_at=row.completed_at)


def _refund_values(refund: Refund) -> dict[str, Any]:
    return dict(
        ticket_id=refund.ticket_id, order_id=refund.order_id, goods_cents=refund.goods_cents,
        shipping_cents=refund.shipping_cents, amount_cents=refund.amount_cents,
        lines=[{"line_no": ln.line_no, "cents": ln.cents, "units": ln.units} for ln in refund.lines],
        status=refund.status.value, attempts=refund.attempts, next_attempt_at=refund.next_attempt_at,
        last_error=refund.last_error, channel_ref=refund.channel_ref, completed_at=refund.completed_at)


# Statements built once, executed with each refund's or ledger's values: refunds and ledgers are
# kept as domain objects and written with these, where ORM rows changed in place had cost a
# flush each (the ORM's unit of work), about a fifth of finance's busy time in a burst (2026-12-06).
_REFUNDS = cast(Table, RefundRow.__table__)
_ADD_REFUND = insert(_REFUNDS)
_SAVE_REFUND = update(_REFUNDS).where(_REFUNDS.c.refund_id == bindparam("key"))
_LEDGERS = cast(Table, RefundLedgerRow.__table__)
_MAKE_LEDGER = insert(_LEDGERS).on_conflict_do_nothing().returning(*_LEDGERS.c)
_SAVE_LEDGER = update(_LEDGERS).where(_LEDGERS.c.order_id == bindparam("key"))


class RefundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._kept: dict[uuid.UUID, Refund] = {}  # locked (or added) in this transaction, as last written
        self._read: set[str] = set()  # orders whose refunds were all read above: no other exists

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """The refunds of these orders, locked in one statement (refund id order)."""
        for row in await rows_of_orders(self.session, RefundRow, order_ids, RefundRow.refund_id):
            self._kept[row.refund_id] = _refund(row)
        self._read.update(order_ids)

    async def write(self) -> None:
        """Nothing is kept back: every add and save is written at once (``due`` and the look-ups
        of other orders read the table)."""

    def forget(self) -> None:
        self._kept.clear()
        self._read.clear()

    async def _locked(self, *where: Any) -> Refund | None:
        row = (await self.session.execute(select(_REFUNDS).where(*where).with_for_update())).first()
        if row is None:
            return None
        refund = self._kept[row.refund_id] = _refund(row)
        return replace(refund)

    async def for_ticket(self, ticket_id: str, order_id: str) -> Refund | None:
        kept = next((refund for refund in self._kept.values() if refund.ticket_id == ticket_id), None)
        if kept is not None:
            return replace(kept)
        if order_id in self._read:  # the batch locked every refund of the order: this ticket has none
            return None
        return await self._locked(_REFUNDS.c.ticket_id == ticket_id)

    async def ticket_of(self, refund_id: uuid.UUID) -> str | None:
        if refund_id in self._kept:
            return self._kept[refund_id].ticket_id
        return (await self.session.execute(select(_REFUNDS.c.ticket_id).where(
            _REFUNDS.c.refund_id == refund_id))).scalar_one_or_none()

    async def get(self, refund_id: uuid.UUID) -> Refund | None:
        if refund_id in self._kept:  # locked already, as last written
            return replace(self._kept[refund_id])
        return await self._locked(_REFUNDS.c.refund_id == refund_id)

    async def add(self, refund: Refund) -> None:
        """Written at once: a look-up of the ticket by another path in this transaction sees it."""
        await self.session.execute(_ADD_REFUND, {"refund_id": refund.refund_id, **_refund_values(refund)})
        self._kept[refund.refund_id] = replace(refund)

    async def save(self, refund: Refund) -> None:
        if refund.refund_id not in self._kept:
            raise LookupError(f"refund {refund.refund_id} was not loaded")  # ``get`` locks it first
        await self.session.execute(_SAVE_REFUND, {"key": refund.refund_id, **_refund_values(refund)})
        self._kept[refund.refund_id] = replace(refund)

    async def due(self, now: datetime, skip: Quarantine, limit: int = 50) -> list[DueItem]:
        rows = (await self.session.execute(
            select(RefundRow.refund_id, RefundRow.order_id)
            .where(RefundRow.status == RefundStatus.PENDING.value, RefundRow.next_attempt_at <= now,
                   skip.excluding(RefundRow.refund_id))
            .order_by(RefundRow.next_attempt_at).limit(limit))).all()
        return [DueItem(str(refund_id), order_id) for refund_id, order_id in rows]


def _ledger_values(ledger: RefundLedger) -> dict[str, Any]:
    return dict(lines={str(k): v.as_dict() for k, v in ledger.lines.items()},
                shipping_fee_cents=ledger.shipping_fee_cents, shipping_refunded_cents=ledger.shipping_refunded_cents,
                settlement_cents=ledger.settlement_cents, settled_refund_cents=ledger.settled_refund_cents,
                close_requested=ledger.close_requested)


def _ledger_values_of(row: Row[Any]) -> dict[str, Any]:
    """A stored ledger's columns but its key, as ``_ledger_values`` gives them."""
    return {name: value for name, value in row._mapping.items() if name != "order_id"}


def _ledger(order_id: str, values: dict[str, Any]) -> RefundLedger:
    return RefundLedger({int(k): LedgerLine(**v) for k, v in values["lines"].items()},
                        values["shipping_fee_cents"], values["shipping_refunded_cents"], order_id=order_id,
                        settlement_cents=values["settlement_cents"],
                        settled_refund_cents=values["settled_refund_cents"], close_requested=values["close_requested"])


class LedgerRepository:
    """Ledgers locked in this transaction are kept as their column values, current with every
    save; the changed ones are written with one statement at the commit (``write``)."""

    def __init__(self, session: AsyncSession, orders: PaidOrderRepository) -> None:
        """``orders``: the unit of work's own, which knows the copies recorded in this transaction
        and not yet written."""
        self.session = session
        self.orders = orders
        self._kept: dict[str, dict[str, Any]] = {}  # locked in this transaction, as last saved
        self._changed: set[str] = set()  # saved since the last write
        self._read: set[str] = set()  # orders whose ledger the batch looked for: absent means not yet made

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """The ledgers of these orders, locked in one statement (order id order)."""
        for row in await rows_of_orders(self.session, RefundLedgerRow, order_ids, RefundLedgerRow.order_id):
            self._kept[row.order_id] = _ledger_values_of(row)
        self._read.update(order_ids)

    async def write(self) -> None:
        """The ledgers saved since the last write, in one statement (in order id order)."""
        if self._changed:
            changed, self._changed = sorted(self._changed), set()
            await self.session.execute(_SAVE_LEDGER, [{"key": order_id, **self._kept[order_id]}
                                                      for order_id in changed])

    def forget(self) -> None:
        self._kept.clear()
        self._changed.clear()
        self._read.clear()

    async def _values(self, order_id: str) -> dict[str, Any] | None:
        if order_id in self._kept:  # locked already, with this transaction's changes
            return self._kept[order_id]
        if order_id in self._read:  # the batch's read found none: the first refund makes it
            return None
        row = (await self.session.execute(select(_LEDGERS).where(
            _LEDGERS.c.order_id == order_id).with_for_update())).first()
        if row is None:
            return None
        values = self._kept[order_id] = _ledger_values_of(row)
        return values

    async def get(self, order_id: str) -> RefundLedger:
        values = await self._values(order_id)
        if values is None:
            order = await self.orders.get(order_id)
            lines = {str(ln.line_no): LedgerLine(ln.paid_cents, ln.quantity).as_dict() for ln in order.lines}
            made = (await self.session.execute(_MAKE_LEDGER, dict(
                order_id=order_id, lines=lines, shipping_fee_cents=order.shipping_fee_cents,
                shipping_refunded_cents=0,
                settlement_cents=settlement(order.paid_cents, order.platform_subsidy_cents, order.platform_fee_cents),
                settled_refund_cents=0, close_requested=False))).first()
            if made is None:  # another transaction made it first: wait for its lock, then read it
                self._read.discard(order_id)
                values = await self._values(order_id)
            else:  # the row just inserted is this transaction's: locked
                values = self._kept[order_id] = _ledger_values_of(made)
            if values is None:
                raise LookupError(f"ledger of order {order_id} vanished")
        return _ledger(order_id, values)

    async def save(self, ledger: RefundLedger) -> None:
        if ledger.order_id not in self._kept:  # locked by ``get`` in this transaction
            raise LookupError(f"ledger of order {ledger.order_id} was not loaded")
        self._kept[ledger.order_id] = _ledger_values(ledger)
        self._changed.add(ledger.order_id)


class CompensationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, compensation: Compensation) -> bool:
        stmt = insert(CompensationRow).values(
            compensation_id=compensation.compensation_id, ticket_id=compensation.ticket_id,
            order_id=compensation.order_id, coupon_cents=compensation.coupon_cents,
            virtual_currency_cents=compensation.virtual_currency_cents,
        ).on_conflict_do_nothing().returning(CompensationRow.compensation_id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def get(self, compensation_id: uuid.UUID) -> Compensation | None:
        row = await self.session.get(CompensationRow, compensation_id, with_for_update=True)
        if row is None:
            return None
        return Compensation(row.compensation_id, row.ticket_id, row.order_id, row.coupon_cents,
                            row.virtual_currency_cents, row.acknowledged_at)

    async def save(self, compensation: Compensation) -> None:
        row = await self.session.get(CompensationRow, compensation.compensation_id)
        if row is not None:
            row.acknowledged_at = compensation.acknowledged_at


_RECORD_PAID_ORDER = insert(PaidOrderRow).on_conflict_do_nothing()  # built once, executed with each batch's rows


class PaidOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[str, PaidOrderRow | Row[Any]] = {}  # read ahead for a batch (an order's copy never changes)
        self._new: list[dict[str, Any]] = []  # recorded in this transaction, inserted together by ``write``

    async def record(self, order: PaidOrder) -> None:
        if order.order_id in self._rows:
            return  # finance has its copy already (a redelivered OrderPlaced), or recorded it in this batch
        values = dict(order_id=order.order_id, shop_id=order.shop_id, lines=[vars(ln) for ln in order.lines],
                      shipping_fee_cents=order.shipping_fee_cents, platform_subsidy_cents=order.platform_subsidy_cents,
                      platform_fee_cents=order.platform_fee_cents, currency=order.currency)
        self._new.append(values)
        self._rows[order.order_id] = PaidOrderRow(**values)  # not in the session: ``known`` and ``get`` read it

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """What these orders paid, in one statement: ``known`` and ``get`` then find them without
        one (an order finance has no copy of yet is asked for again, as before)."""
        for row in await rows_of_orders(self.session, PaidOrderRow, order_ids, lock=False):
            self._rows[row.order_id] = row

    async def write(self) -> None:
        """The copies recorded since the last write, in one statement (one insert per OrderPlaced
        had been 3-7 % of finance's busy time in a burst's profile)."""
        if self._new:
            new, self._new = self._new, []
            await self.session.execute(_RECORD_PAID_ORDER, new)

    def forget(self) -> None:
        self._rows.clear()
        self._new.clear()

    async def _row(self, order_id: str) -> PaidOrderRow | Row[Any] | None:
        return self._rows.get(order_id) or await self.session.get(PaidOrderRow, order_id)

    async def known(self, order_id: str) -> bool:
        return await self._row(order_id) is not None

    async def get(self, order_id: str) -> PaidOrder:
        row = await self._row(order_id)
        if row is None:
            raise LookupError(f"finance has no copy of what order {order_id} paid")
        return PaidOrder(row.order_id, row.shop_id, tuple(_order_line(ln) for ln in row.lines),
                         row.shipping_fee_cents, row.platform_subsidy_cents, row.platform_fee_cents, row.currency)


def _order_line(stored: dict[str, object]) -> OrderLine:
    """A stored line (intake's backfilled lines carry the same keys, some finance does not use)."""
    fields = OrderLine.__dataclass_fields__
    return OrderLine(**{k: v for k, v in stored.items() if k in fields})  # type: ignore[arg-type]
