"""Loading and saving the ticket aggregate, and announcing its transitions.

Loading takes a row lock (``SELECT … FOR UPDATE``): two decisions on one ticket serialize,
and the second sees the first's outcome, so every race resolves to one consistent result.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, Protocol, cast

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Contract, Envelope, Money
from contracts import aftersales as c
from contracts.ops import OpsAlert, Severity
from services.domain.model import Actor, AfterSalesType, InterceptState, Role, TicketStatus
from services.domain.ticket import Ticket, TicketLine

from .db import rows_of_orders
from .failures import ConcurrentUpdate
from .tables import TicketAuditRow, TicketRow
from .uow import Stage, UnitOfWork


def _line_to_json(ln: TicketLine) -> dict[str, Any]:
    return {"line_no": ln.line_no, "sku": ln.sku, "quantity": ln.quantity,
            "positions": list(ln.positions), "cap_cents": ln.cap_cents,
            "refund_cents": ln.refund_cents, "line_paid_cents": ln.line_paid_cents,
            "line_quantity": ln.line_quantity, "exchange_sku": ln.exchange_sku}


def _line_from_json(d: dict[str, Any]) -> TicketLine:
    return TicketLine(d["line_no"], d["sku"], d["quantity"], tuple(d["positions"]), d["cap_cents"],
                      d["refund_cents"], d["line_paid_cents"], d["line_quantity"], d.get("exchange_sku"))


_COPIED = ("ticket_id", "ticket_no", "order_id", "shop_id", "buyer_id", "applied_at", "reason_code",
           "description", "before_shipment", "paid_at", "refund_coupon", "refund_virtual_currency",
           "refund_shipping", "ops_reviewer_id", "reviewed_at", "manager_id", "finance_reviewer_id",
           "goods_received", "return_carrier", "return_waybill", "close_reason", "deadline_at",
           "deadline_kind", "version", "currency", "return_address", "reissue", "delivery_refused")


_TICKETS = cast(Table, TicketRow.__table__)
# Built once, executed with each ticket's values: building ``update(...).values(**ticket)`` for
# every transition turned each of its thirty-odd values into an expression first.
_SAVE_TICKET = update(_TICKETS).where(
    _TICKETS.c.ticket_id == bindparam("key"), _TICKETS.c.version == bindparam("expected_version"))
_ADD_TICKET = insert(_TICKETS)
# A transaction's transitions, written together (``SqlUnitOfWork.stage``): as ORM objects flushed
# at the commit they had been about a tenth of finance's busy time in a burst's profile.
_AUDIT = insert(cast(Table, TicketAuditRow.__table__))


def to_domain(row: TicketRow | Row[Any]) -> Ticket:
    fields = {name: getattr(row, name) for name in _COPIED}
    return Ticket(type=AfterSalesType(row.type), status=TicketStatus(row.status),
                  lines=[_line_from_json(d) for d in row.lines], evidence=tuple(row.evidence),
                  intercept=InterceptState(row.intercept), **fields)


def _row_values(ticket: Ticket) -> dict[str, Any]:
    values = {name: getattr(ticket, name) for name in _COPIED}
    values.update(type=ticket.type.value, status=ticket.status.value,
                  lines=[_line_to_json(ln) for ln in ticket.lines], evidence=list(ticket.evidence),
                  intercept=ticket.intercept.value, refund_total_cents=ticket.refund_total_cents)
    return values


class Tickets(Protocol):
    """The ticket repository every worker that moves tickets uses (``uow.tickets``)."""

    async def get(self, ticket_id: str, *, lock: bool = True) -> Ticket | None: ...

    async def for_order(self, order_id: str) -> list[Ticket]: ...

    async def exists(self, ticket_id: str, order_id: str) -> bool: ...

    async def add(self, ticket: Ticket, request_id: uuid.UUID) -> None: ...

    async def save(self, ticket: Ticket) -> None: ...


class TicketWork(Protocol):
    """A unit of work with tickets: what ``save_and_announce`` needs."""

    tickets: Tickets

    def publish(self, payload: Contract, *, key: str, cause: Envelope[Any] | None = None,
                topic: str | None = None) -> Envelope[Any]: ...


class TicketStore:
    """Tickets in PostgreSQL: a row per ticket and an audit row per transition.

    A worker may lock the tickets of a batch's orders at once (``read_batch``): ``get`` then
    serves them, and ``save`` keeps them current, without a statement each. Only they are kept:
    a ticket read one by one is read again each time, as before."""

    def __init__(self, session: AsyncSession, stage: Stage | None = None) -> None:
        """``stage``: the unit of work's, which writes the audit rows with its other rows kept
        back; without it (a read, a test) each save writes its own at once."""
        self.session = session
        self._stage = stage
        self._locked: dict[str, Ticket] = {}  # locked by read_batch in this transaction, as last written
        self._orders: set[str] = set()  # orders whose every ticket is in ``_locked``

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """Locks the tickets of these orders in one statement, in ticket id order (the order every
        process takes them in), and keeps them for ``get``."""
        wanted = sorted(set(order_ids) - self._orders)
        if not wanted:
            return
        for row in await rows_of_orders(self.session, TicketRow, wanted, TicketRow.ticket_id):
            self._locked[row.ticket_id] = to_domain(row)
        self._orders.update(wanted)

    async def write(self) -> None:
        """Nothing is kept back: every save is written at once (its version check needs it)."""

    def forget(self) -> None:
        """A savepoint rolled back: tickets are read again."""
        self._locked.clear()
        self._orders.clear()

    async def exists(self, ticket_id: str, order_id: str) -> bool:
        return (await self.session.execute(select(TicketRow.ticket_id).where(
            TicketRow.ticket_id == ticket_id, TicketRow.order_id == order_id))).first() is not None

    async def get(self, ticket_id: str, *, lock: bool = True) -> Ticket | None:
        if ticket_id in self._locked:
            return self._locked[ticket_id].copy()
        stmt = (select(TicketRow).where(TicketRow.ticket_id == ticket_id)
                .execution_options(populate_existing=True))  # saves are Core UPDATEs: reload, never reuse
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return to_domain(row) if row else None

    async def for_order(self, order_id: str) -> list[Ticket]:
        if order_id in self._orders:
            kept = [t for t in self._locked.values() if t.order_id == order_id]
            return [t.copy() for t in sorted(kept, key=lambda t: t.applied_at)]
        rows = (await self.session.execute(
            select(TicketRow).where(TicketRow.order_id == order_id).order_by(TicketRow.applied_at)
            .execution_options(populate_existing=True))).scalars().all()
        return [to_domain(r) for r in rows]

    async def add(self, ticket: Ticket, request_id: uuid.UUID) -> None:
        await self.session.execute(_ADD_TICKET, {"request_id": request_id, **_row_values(ticket)})
        await self._audit(ticket)
        if ticket.order_id in self._orders:  # new in this transaction: no one else sees it yet
            self._keep(ticket)

    async def save(self, ticket: Ticket) -> None:
        """Writes the new state with an optimistic version check on top of the row lock."""
        values = _row_values(ticket)
        values["version"] = ticket.version + 1
        result = await self.session.execute(
            _SAVE_TICKET, {"key": ticket.ticket_id, "expected_version": ticket.version, **values})
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentUpdate(f"ticket {ticket.ticket_id} changed concurrently")
        ticket.version += 1
        await self._audit(ticket)
        if ticket.ticket_id in self._locked:
            self._keep(ticket)

    def _keep(self, ticket: Ticket) -> None:
        """Keeps a copy of the ticket as just written, for the rest of the batch."""
        kept = ticket.copy()
        kept.changes = []  # audited already
        self._locked[ticket.ticket_id] = kept

    async def _audit(self, ticket: Ticket) -> None:
        """An audit row per transition the ticket recorded (after the ticket's own row)."""
        rows = [dict(ticket_id=ticket.ticket_id, at=t.at, from_status=t.from_status.value,
                     to_status=t.to_status.value, actor_role=t.actor.role.value, actor_id=t.actor.id,
                     action=t.action, reason=t.reason, amount_before_cents=t.amount_before_cents,
                     amount_after_cents=t.amount_after_cents) for t in ticket.changes]
        if self._stage is None:
            if rows:
                await self.session.execute(_AUDIT, rows)
            return
        for row in rows:
            self._stage(_AUDIT, row)

    async def history(self, ticket_id: str) -> list[TicketAuditRow]:
        return list((await self.session.execute(
            select(TicketAuditRow).where(TicketAuditRow.ticket_id == ticket_id)
            .order_by(TicketAuditRow.id))).scalars().all())


def _money(ticket: Ticket, cents: int) -> Money:
    return Money(cents=cents, currency=ticket.currency)


def view(ticket: Ticket) -> c.TicketView:
    return c.TicketView(
        ticket_id=ticket.ticket_id, ticket_no=ticket.ticket_no, order_id=ticket.order_id,
        shop_id=ticket.shop_id, buyer_id=ticket.buyer_id, type=c.AfterSalesType(ticket.type.value),
        status=c.TicketStatus(ticket.status.value),
        lines=[c.TicketLineView(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity,
                                cap=_money(ticket, ln.cap_cents), refund=_money(ticket, ln.refund_cents),
                                exchange_sku=ln.exchange_sku)
               for ln in ticket.lines],
        refund_total=_money(ticket, ticket.refund_total_cents), refund_coupon=ticket.refund_coupon,
        refund_virtual_currency=ticket.refund_virtual_currency, refund_shipping=ticket.refund_shipping,
        before_shipment=ticket.before_shipment, reason_code=ticket.reason_code,
        return_carrier=ticket.return_carrier, return_waybill=ticket.return_waybill,
        return_address=c.ReturnAddress(**ticket.return_address) if ticket.return_address else None,
        reissue=ticket.reissue, delivery_refused=ticket.delivery_refused,
        applied_at=ticket.applied_at, deadline_at=ticket.deadline_at)


def actor_from(a: c.Actor) -> Actor:
    return Actor(Role(a.role.value), a.id)


def _actor_contract(a: Actor) -> c.Actor:
    return c.Actor(role=c.Role(a.role.value), id=a.id)


def announce(uow: TicketWork | UnitOfWork, ticket: Ticket, cause: Envelope[Any] | None) -> None:
    """Publishes one TicketStatusChanged per recorded transition and one OpsAlert per alert."""
    snapshot = view(ticket)
    for t in ticket.changes:
        if t.action == "open":
            continue  # announced by TicketOpened
        uow.publish(c.TicketStatusChanged(
            ticket=snapshot, from_status=c.TicketStatus(t.from_status.value),
            to_status=c.TicketStatus(t.to_status.value), actor=_actor_contract(t.actor),
            reason=t.reason[:500], action=t.action[:64],
            amount_before=None if t.amount_before_cents is None else _money(ticket, t.amount_before_cents),
            amount_after=None if t.amount_after_cents is None else _money(ticket, t.amount_after_cents),
        ), key=ticket.order_id, cause=cause)
    for alert in ticket.alerts:
        uow.publish(OpsAlert(kind=alert.kind, severity=Severity(alert.severity),
                             message=alert.message[:500], order_id=ticket.order_id,
                             ticket_id=ticket.ticket_id), key=ticket.order_id, cause=cause)
    ticket.changes.clear()
    ticket.alerts.clear()


async def save_and_announce(uow: TicketWork, ticket: Ticket, cause: Envelope[Any] | None) -> None:
    await uow.tickets.save(ticket)
    announce(uow, ticket, cause)


def command_rejected(envelope: Envelope[Any], err: Any) -> c.CommandRejected:
    """The rejection event for a staff/system command refused by a domain rule."""
    payload = envelope.payload
    actor = getattr(payload, "actor", None)
    return c.CommandRejected(order_id=envelope.key, command_type=envelope.type, code=err.code,
                             message=err.message[:500], ticket_id=getattr(payload, "ticket_id", None),
                             actor=actor, rejected_event_id=envelope.event_id)
