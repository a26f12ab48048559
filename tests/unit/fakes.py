"""In-memory units of work and repositories, for use-case tests that run in milliseconds.

``FakeDatabase`` holds committed state. A unit of work works on a deep copy of it and puts the
copy back on commit, so a use case that raises leaves nothing behind, as a rolled-back
PostgreSQL transaction would; ``savepoint`` does the same for its block. Repositories hand out
copies too: an aggregate changed but not saved changes nothing. There are no locks: each
test runs one use case at a time (the races are the integration tests' job).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from contracts import Envelope
from contracts.topics import BY_NAME
from services.backoffice import views
from services.backoffice.repository import BackOfficeUnitOfWork
from services.backoffice.staff import Staff, StaffRole
from services.common.kafka_access import principals
from services.common.parked import Parked
from services.common.quarantine import DueItem, Quarantine
from services.dead_letters.repository import DeadLetterUnitOfWork
from services.domain.erp_order import ErpOrder
from services.domain.figures import TimeInState, time_in_state
from services.domain.line_state import Line
from services.domain.model import AfterSalesType, OrderState
from services.domain.order import Order
from services.domain.reasons import DEFAULT_REASONS, Reason
from services.domain.refund import Compensation, Refund, RefundStatus
from services.domain.refunds import LedgerLine, RefundLedger, settlement
from services.domain.serial_returner import ReturnerFlag
from services.domain.settlement import EntryKind, SettlementOrder, StatementEntry
from services.domain.shipment import Shipment, ShipmentStatus
from services.domain.ticket import Ticket, Transition
from services.domain.work_queue import ItemState, WorkItem
from services.erp_sync.repository import ErpUnitOfWork
from services.finance.repository import FinanceUnitOfWork, PaidOrder
from services.intake.repository import IntakeUnitOfWork
from services.monitoring.repository import MonitoringUnitOfWork, OrderFacts, TrackedTicket
from services.notifications.repository import BuyerDeadline, NotificationsUnitOfWork
from services.review.repository import ReviewUnitOfWork
from services.scheduler.repository import SchedulerUnitOfWork, UnpaidOrder
from services.settlement.repository import Entry, SettlementUnitOfWork
from services.warehouse.repository import Receipt, WarehouseUnitOfWork

PRINCIPALS = set(principals())


@dataclass
class Staged:
    producer: str
    topic: str
    envelope: Envelope[Any]
    published: bool = False


@dataclass
class FakeStaffUser:
    user_id: str
    username: str
    password_hash: str
    role: str
    shops: list[str]
    active: bool = True
    failed_sign_ins: int = 0
    locked_until: datetime | None = None


@dataclass
class State:
    """Every table the fakes stand for, as plain collections."""

    tickets: dict[str, Ticket] = field(default_factory=dict)
    ticket_requests: dict[uuid.UUID, str] = field(default_factory=dict)
    audit: list[tuple[str, Transition]] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    parked: dict[int, Parked] = field(default_factory=dict)
    parked_at: dict[int, datetime] = field(default_factory=dict)
    reasons: dict[tuple[AfterSalesType, str], Reason] = field(default_factory=dict)
    refunds: dict[uuid.UUID, Refund] = field(default_factory=dict)
    ledgers: dict[str, RefundLedger] = field(default_factory=dict)
    paid_orders: dict[str, PaidOrder] = field(default_factory=dict)
    compensations: dict[uuid.UUID, Compensation] = field(default_factory=dict)
    receipts: dict[uuid.UUID, Receipt] = field(default_factory=dict)
    shipments: dict[uuid.UUID, Shipment] = field(default_factory=dict)
    intercepts: dict[str, dict[str, Any]] = field(default_factory=dict)
    erp_orders: dict[uuid.UUID, ErpOrder] = field(default_factory=dict)
    dead_letters: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    inbox: dict[tuple[str, uuid.UUID], bytes | None] = field(default_factory=dict)
    outbox: list[Staged] = field(default_factory=list)
    quarantined: set[tuple[str, str, str]] = field(default_factory=set)
    staff_users: dict[str, FakeStaffUser] = field(default_factory=dict)
    staff_sessions: dict[bytes, tuple[str, datetime]] = field(default_factory=dict)
    decisions: dict[uuid.UUID, views.Decision] = field(default_factory=dict)
    monitoring: MonitoringTables = field(default_factory=lambda: MonitoringTables())
    buyer_deadlines: dict[str, BuyerDeadline] = field(default_factory=dict)
    settlement_orders: dict[str, SettlementOrder] = field(default_factory=dict)
    settlement_entries: dict[uuid.UUID, tuple[Entry, date | None]] = field(default_factory=dict)
    next_id: int = 1


@dataclass
class MonitoringTables:
    orders: dict[str, OrderFacts] = field(default_factory=dict)
    tickets: dict[str, TrackedTicket] = field(default_factory=dict)
    state_times: list[tuple[str, str, datetime, float]] = field(default_factory=list)  # shop, status, left, s
    counters: dict[tuple[str, date, str, str, str], int] = field(default_factory=dict)
    changed_days: set[tuple[str, date]] = field(default_factory=set)
    items: dict[uuid.UUID, WorkItem] = field(default_factory=dict)
    buyer_flags: dict[tuple[str, str], tuple[str, ReturnerFlag]] = field(default_factory=dict)
    lines: dict[tuple[str, int], Line] = field(default_factory=dict)


class FakeDatabase:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.state = State()
        self.commits = 0
        self.clock = clock or (lambda: datetime.now(UTC))  # PostgreSQL's now(), for server defaults
        for reason in DEFAULT_REASONS:
            for ticket_type in reason.types:
                self.state.reasons[(ticket_type, reason.code)] = replace(reason, types=(ticket_type,))

    def sent(self, type_name: str | None = None) -> list[Envelope[Any]]:
        """What committed transactions put in the outbox, in order (optionally of one type)."""
        return [s.envelope for s in self.state.outbox if type_name is None or s.envelope.type == type_name]

    def relay(self) -> None:
        """The outbox relay ran: every staged message reached Kafka."""
        for staged in self.state.outbox:
            staged.published = True


class FakeUnitOfWork:
    """The transactional part every fake unit of work shares (mixed in before the worker's own
    abstract unit of work, whose repositories ``_open`` sets)."""

    def __init__(self, db: FakeDatabase, producer: str = "test") -> None:
        super().__init__(producer)  # type: ignore[call-arg]
        self.db = db
        self.state = State()

    def _open(self, state: State) -> None:
        """Sets the worker's fake repositories on ``state`` (each worker's fake overrides it)."""

    async def _begin(self) -> None:
        self.state = copy.deepcopy(self.db.state)
        self._open(self.state)

    async def _rollback(self) -> None:
        self.state = State()

    async def _close(self) -> None:
        pass

    async def commit(self) -> None:
        self.db.state = self.state
        self.db.commits += 1
        self.committed = True

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        saved = copy.deepcopy(self.state)
        published = len(self.published)  # type: ignore[attr-defined]
        try:
            yield
        except BaseException:
            self.state.__dict__.update(saved.__dict__)  # the repositories keep pointing at self.state
            self._unpublish_from(published)  # type: ignore[attr-defined]
            raise

    async def first_time_many(self, consumer: str, events: dict[uuid.UUID, bytes | None]) -> set[uuid.UUID]:
        from services.common.uow import EventIdReused

        fresh: set[uuid.UUID] = set()
        reused = []
        for event_id, digest in events.items():
            key = (consumer, event_id)
            if key not in self.state.inbox:
                self.state.inbox[key] = digest
                fresh.add(event_id)
            elif digest is not None and self.state.inbox[key] not in (None, digest):
                reused.append(event_id)
        if reused:
            raise EventIdReused(reused)
        return fresh

    async def unpublished(self, type_name: str, key: str) -> bool:
        return any(s.producer == self.producer and s.envelope.type == type_name and s.envelope.key == key  # type: ignore[attr-defined]
                   and not s.published for s in self.state.outbox)

    async def set_aside(self, worker: str, job: str, item_id: str, order_id: str, error: str) -> None:
        self.state.quarantined.add((worker, job, item_id))

    def _stage(self, envelope: Envelope[Any], row: dict[str, Any]) -> None:
        """Also holds what the broker's ACLs hold: a worker writes only the topics the catalogue
        names it a producer of (a use case publishing elsewhere would be refused in production)."""
        topic = row["topic"]
        catalogued = BY_NAME.get(topic)
        if catalogued is not None and self.producer in PRINCIPALS and self.producer not in catalogued.producers:  # type: ignore[attr-defined]
            raise AssertionError(f"{self.producer} may not write {topic} (contracts/topics.py)")  # type: ignore[attr-defined]
        self.state.outbox.append(Staged(self.producer, topic, envelope))  # type: ignore[attr-defined]


def _skipped(state: State, skip: Quarantine, item_id: object) -> bool:
    return (skip.worker, skip.job, str(item_id)) in state.quarantined


# ---------------------------------------------------------------- repositories
class FakeTickets:
    def __init__(self, state: State) -> None:
        self.state = state

    async def get(self, ticket_id: str, *, lock: bool = True) -> Ticket | None:
        ticket = self.state.tickets.get(ticket_id)
        return copy.deepcopy(ticket) if ticket else None

    async def for_order(self, order_id: str) -> list[Ticket]:
        return [copy.deepcopy(t) for t in sorted(self.state.tickets.values(), key=lambda t: t.applied_at)
                if t.order_id == order_id]

    async def exists(self, ticket_id: str, order_id: str) -> bool:
        ticket = self.state.tickets.get(ticket_id)
        return ticket is not None and ticket.order_id == order_id

    async def add(self, ticket: Ticket, request_id: uuid.UUID) -> None:
        self.state.ticket_requests[request_id] = ticket.ticket_id
        self._store(ticket)

    async def save(self, ticket: Ticket) -> None:
        from services.common.failures import ConcurrentUpdate

        stored = self.state.tickets.get(ticket.ticket_id)
        if stored is None or stored.version != ticket.version:
            raise ConcurrentUpdate(f"ticket {ticket.ticket_id} changed concurrently")
        ticket.version += 1
        self._store(ticket)

    def _store(self, ticket: Ticket) -> None:
        self.state.audit += [(ticket.ticket_id, t) for t in ticket.changes]
        self.state.tickets[ticket.ticket_id] = replace(copy.deepcopy(ticket), changes=[], alerts=[])


class FakeOrders:
    def __init__(self, state: State, clock: Callable[[], datetime]) -> None:
        self.state = state
        self.clock = clock

    async def get(self, order_id: str, *, lock: bool = True) -> Order | None:
        order = self.state.orders.get(order_id)
        return copy.deepcopy(order) if order else None

    async def add(self, order: Order) -> bool:
        if order.order_id in self.state.orders:
            return False
        self.state.orders[order.order_id] = copy.deepcopy(order)
        return True

    async def save(self, order: Order) -> None:
        self.state.orders[order.order_id] = copy.deepcopy(order)

    async def park(self, order_id: str, event_id: uuid.UUID, type_name: str, value: bytes, reason: str) -> None:
        if any(p.event_id == event_id for p in self.state.parked.values()):
            return
        parked_id = self.state.next_id
        self.state.next_id += 1
        self.state.parked[parked_id] = Parked(parked_id, order_id, event_id, type_name, value, reason)
        self.state.parked_at[parked_id] = self.clock()

    async def parked(self, order_id: str) -> list[Parked]:
        return [p for _, p in sorted(self.state.parked.items()) if p.order_id == order_id]

    async def unpark(self, parked_id: int) -> None:
        self.state.parked.pop(parked_id, None)


class FakeReasons:
    def __init__(self, state: State) -> None:
        self.state = state

    async def get(self, ticket_type: AfterSalesType, code: str) -> Reason | None:
        return self.state.reasons.get((ticket_type, code))

    async def listing(self, ticket_type: AfterSalesType, *, include_hidden: bool = False) -> list[Reason]:
        return sorted((r for (t, _), r in self.state.reasons.items() if t == ticket_type
                       and (include_hidden or r.visible)), key=lambda r: r.position)

    async def upsert(self, ticket_type: AfterSalesType, code: str, label: str, *, visible: bool = True,
                     position: int | None = None) -> None:
        if position is None:
            position = max((r.position for r in await self.listing(ticket_type, include_hidden=True)), default=0) + 1
        self.state.reasons[(ticket_type, code)] = Reason(code, label, (ticket_type,), visible, position)

    async def set_visible(self, ticket_type: AfterSalesType, code: str, visible: bool) -> bool:
        found = self.state.reasons.get((ticket_type, code))
        if found is None:
            return False
        self.state.reasons[(ticket_type, code)] = replace(found, visible=visible)
        return True

    async def delete(self, ticket_type: AfterSalesType, code: str) -> bool:
        return self.state.reasons.pop((ticket_type, code), None) is not None

    async def reorder(self, ticket_type: AfterSalesType, codes: list[str]) -> None:
        for position, code in enumerate(codes, start=1):
            if (ticket_type, code) in self.state.reasons:
                self.state.reasons[(ticket_type, code)] = replace(self.state.reasons[(ticket_type, code)],
                                                                  position=position)


class FakeRefunds:
    def __init__(self, state: State) -> None:
        self.state = state

    async def for_ticket(self, ticket_id: str, order_id: str) -> Refund | None:
        found = [r for r in self.state.refunds.values() if r.ticket_id == ticket_id and r.order_id == order_id]
        return copy.deepcopy(found[0]) if found else None

    async def ticket_of(self, refund_id: uuid.UUID) -> str | None:
        refund = self.state.refunds.get(refund_id)
        return refund.ticket_id if refund else None

    async def get(self, refund_id: uuid.UUID) -> Refund | None:
        refund = self.state.refunds.get(refund_id)
        return copy.deepcopy(refund) if refund else None

    async def add(self, refund: Refund) -> None:
        if any(r.ticket_id == refund.ticket_id for r in self.state.refunds.values()):
            raise ValueError(f"ticket {refund.ticket_id} has a refund already (unique in the schema)")
        self.state.refunds[refund.refund_id] = copy.deepcopy(refund)

    async def save(self, refund: Refund) -> None:
        self.state.refunds[refund.refund_id] = copy.deepcopy(refund)

    async def due(self, now: datetime, skip: Quarantine) -> list[DueItem]:
        due = [r for r in self.state.refunds.values() if r.status == RefundStatus.PENDING
               and r.next_attempt_at is not None and r.next_attempt_at <= now
               and not _skipped(self.state, skip, r.refund_id)]
        return [DueItem(str(r.refund_id), r.order_id) for r in sorted(due, key=lambda r: r.next_attempt_at or now)]


class FakeLedgers:
    def __init__(self, state: State) -> None:
        self.state = state

    async def get(self, order_id: str) -> RefundLedger:
        if order_id not in self.state.ledgers:
            order = await FakePaidOrders(self.state).get(order_id)
            self.state.ledgers[order_id] = RefundLedger(
                {ln.line_no: LedgerLine(ln.paid_cents, ln.quantity) for ln in order.lines},
                order.shipping_fee_cents, order_id=order_id,
                settlement_cents=settlement(order.paid_cents, order.platform_subsidy_cents,
                                            order.platform_fee_cents))
        return copy.deepcopy(self.state.ledgers[order_id])

    async def save(self, ledger: RefundLedger) -> None:
        self.state.ledgers[ledger.order_id] = copy.deepcopy(ledger)


class FakeCompensations:
    def __init__(self, state: State) -> None:
        self.state = state

    async def add(self, compensation: Compensation) -> bool:
        if any(c.ticket_id == compensation.ticket_id for c in self.state.compensations.values()):
            return False
        self.state.compensations[compensation.compensation_id] = copy.deepcopy(compensation)
        return True

    async def get(self, compensation_id: uuid.UUID) -> Compensation | None:
        found = self.state.compensations.get(compensation_id)
        return copy.deepcopy(found) if found else None

    async def save(self, compensation: Compensation) -> None:
        self.state.compensations[compensation.compensation_id] = copy.deepcopy(compensation)


class FakePaidOrders:
    def __init__(self, state: State) -> None:
        self.state = state

    async def record(self, order: PaidOrder) -> None:
        self.state.paid_orders.setdefault(order.order_id, copy.deepcopy(order))

    async def known(self, order_id: str) -> bool:
        return order_id in self.state.paid_orders

    async def get(self, order_id: str) -> PaidOrder:
        if order_id not in self.state.paid_orders:
            raise LookupError(f"finance has no copy of what order {order_id} paid")
        return copy.deepcopy(self.state.paid_orders[order_id])


class FakeReceipts:
    def __init__(self, state: State) -> None:
        self.state = state

    async def add(self, receipt: Receipt) -> bool:
        if receipt.receipt_id in self.state.receipts:
            return False
        self.state.receipts[receipt.receipt_id] = receipt
        return True


class FakeShipments:
    def __init__(self, state: State) -> None:
        self.state = state

    async def get(self, shipment_id: uuid.UUID) -> Shipment | None:
        found = self.state.shipments.get(shipment_id)
        return copy.deepcopy(found) if found else None

    async def open_for(self, ticket_id: str) -> Shipment | None:
        found = [s for s in self.state.shipments.values()
                 if s.ticket_id == ticket_id and s.status == ShipmentStatus.REQUESTED]
        return copy.deepcopy(found[0]) if found else None

    async def add(self, shipment: Shipment) -> None:
        self.state.shipments[shipment.shipment_id] = copy.deepcopy(shipment)

    async def save(self, shipment: Shipment) -> None:
        self.state.shipments[shipment.shipment_id] = copy.deepcopy(shipment)


class FakeIntercepts:
    def __init__(self, state: State) -> None:
        self.state = state

    async def requested(self, ticket_id: str, order_id: str, at: datetime) -> None:
        self.state.intercepts.setdefault(ticket_id, {"order_id": order_id, "requested_at": at, "outcome": None})

    async def answered(self, ticket_id: str, order_id: str, outcome: str, at: datetime) -> None:
        record = self.state.intercepts.setdefault(ticket_id, {"order_id": order_id, "requested_at": at})
        record.update(outcome=outcome, decided_at=at)


class FakeErpOrders:
    def __init__(self, state: State) -> None:
        self.state = state

    async def add(self, order: ErpOrder) -> bool:
        if any(o.ticket_id == order.ticket_id and o.kind == order.kind for o in self.state.erp_orders.values()):
            return False
        self.state.erp_orders[order.erp_order_id] = copy.deepcopy(order)
        return True

    async def get(self, erp_order_id: uuid.UUID) -> ErpOrder | None:
        found = self.state.erp_orders.get(erp_order_id)
        return copy.deepcopy(found) if found else None

    async def due(self, now: datetime, skip: Quarantine) -> list[DueItem]:
        return [DueItem(str(o.erp_order_id), o.order_id) for o in self.state.erp_orders.values()
                if o.is_due(now) and not _skipped(self.state, skip, o.erp_order_id)]

    async def claim_due(self, erp_order_id: uuid.UUID, now: datetime) -> ErpOrder | None:
        found = self.state.erp_orders.get(erp_order_id)
        return copy.deepcopy(found) if found and found.is_due(now) else None

    async def save(self, order: ErpOrder) -> None:
        self.state.erp_orders[order.erp_order_id] = copy.deepcopy(order)

    async def for_ticket(self, ticket_id: str) -> list[ErpOrder]:
        return [copy.deepcopy(o) for o in self.state.erp_orders.values() if o.ticket_id == ticket_id]


class FakeScheduling:
    """The scheduler's three queries over tickets, orders and parked events."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def overdue_tickets(self, now: datetime, skip: Quarantine, *,
                              shops: list[str] | None = None) -> list[DueItem]:
        return [DueItem(t.ticket_id, t.order_id) for t in self.state.tickets.values()
                if t.deadline_at is not None and t.deadline_at <= now and (shops is None or t.shop_id in shops)
                and not _skipped(self.state, skip, t.ticket_id)]

    async def claim_overdue_ticket(self, ticket_id: str, now: datetime) -> Ticket | None:
        ticket = self.state.tickets.get(ticket_id)
        return copy.deepcopy(ticket) if ticket and ticket.deadline_at and ticket.deadline_at <= now else None

    async def unpaid_orders(self, placed_before: datetime, skip: Quarantine, *, shops: list[str] | None = None,
                            except_shops: list[str] | None = None) -> list[DueItem]:
        return [DueItem(o.order_id, o.order_id) for o in self.state.orders.values()
                if o.state == OrderState.PENDING_PAYMENT and not o.close_requested and o.placed_at <= placed_before
                and (shops is None or o.shop_id in shops) and o.shop_id not in (except_shops or [])
                and not _skipped(self.state, skip, o.order_id)]

    async def claim_unpaid_order(self, order_id: str) -> UnpaidOrder | None:
        o = self.state.orders.get(order_id)
        if o is None or o.state != OrderState.PENDING_PAYMENT or o.close_requested:
            return None
        return UnpaidOrder(o.order_id, o.shop_id, o.placed_at)

    async def close_requested(self, order_id: str) -> None:
        self.state.orders[order_id].close_requested = True

    async def expired_parked(self, skip: Quarantine, *, facts_before: datetime,
                             requests_before: datetime) -> list[DueItem]:
        return [DueItem(str(i), p.order_id) for i, p in sorted(self.state.parked.items())
                if self._expired(i, p, facts_before, requests_before) and not _skipped(self.state, skip, i)]

    async def claim_expired_parked(self, parked_id: int, *, facts_before: datetime,
                                   requests_before: datetime) -> Parked | None:
        p = self.state.parked.get(parked_id)
        if p is None or not self._expired(parked_id, p, facts_before, requests_before):
            return None
        return p

    async def drop_parked(self, parked_id: int) -> None:
        self.state.parked.pop(parked_id, None)

    def _expired(self, parked_id: int, p: Parked, facts_before: datetime, requests_before: datetime) -> bool:
        at = self.state.parked_at.get(parked_id)
        if at is None:
            return False
        return at <= (requests_before if p.type == "RequestAfterSales" else facts_before)


class FakeDeadLetters:
    def __init__(self, state: State) -> None:
        self.state = state

    async def record(self, values: dict[str, Any]) -> bool:
        if values["dead_letter_id"] in self.state.dead_letters:
            return False
        self.state.dead_letters[values["dead_letter_id"]] = dict(values)
        return True

    async def has_unsummarized(self) -> bool:
        return any(not v["summarized"] for v in self.state.dead_letters.values())

    async def unsummarized_counts(self) -> tuple[list[tuple[str, str, int]], datetime | None]:
        rows = [v for v in self.state.dead_letters.values() if not v["summarized"]]
        counts: dict[tuple[str, str], int] = {}
        for v in rows:
            v["summarized"] = True
            counts[(v["source_topic"], v["reason_code"])] = counts.get((v["source_topic"], v["reason_code"]), 0) + 1
        since = min((v["failed_at"] for v in rows), default=None)
        return [(t, c, n) for (t, c), n in sorted(counts.items())], since


# ---------------------------------------------------------------- each worker's fake unit of work
class FakeIntakeUnitOfWork(FakeUnitOfWork, IntakeUnitOfWork):
    def _open(self, state: State) -> None:
        self.tickets, self.reasons = FakeTickets(state), FakeReasons(state)
        self.orders = FakeOrders(state, self.db.clock)


class FakeReviewUnitOfWork(FakeUnitOfWork, ReviewUnitOfWork):
    def _open(self, state: State) -> None:
        self.tickets = FakeTickets(state)


class FakeFinanceUnitOfWork(FakeUnitOfWork, FinanceUnitOfWork):
    def _open(self, state: State) -> None:
        self.tickets, self.refunds, self.ledgers = FakeTickets(state), FakeRefunds(state), FakeLedgers(state)
        self.compensations, self.orders = FakeCompensations(state), FakePaidOrders(state)


class FakeWarehouseUnitOfWork(FakeUnitOfWork, WarehouseUnitOfWork):
    def _open(self, state: State) -> None:
        self.tickets, self.receipts = FakeTickets(state), FakeReceipts(state)
        self.shipments, self.intercepts = FakeShipments(state), FakeIntercepts(state)


class FakeErpUnitOfWork(FakeUnitOfWork, ErpUnitOfWork):
    def _open(self, state: State) -> None:
        self.tickets, self.erp_orders = FakeTickets(state), FakeErpOrders(state)


class FakeSchedulerUnitOfWork(FakeUnitOfWork, SchedulerUnitOfWork):
    def _open(self, state: State) -> None:
        scheduling = FakeScheduling(state)
        self.tickets = FakeTickets(state)
        self.deadlines = self.unpaid = self.parked = scheduling


class FakeDeadLetterUnitOfWork(FakeUnitOfWork, DeadLetterUnitOfWork):
    def _open(self, state: State) -> None:
        self.dead_letters = FakeDeadLetters(state)


class FakeStaffAccounts:
    def __init__(self, state: State) -> None:
        self.state = state

    async def add(self, user_id: str, username: str, password_hash: str, role: StaffRole,
                  shops: list[str]) -> bool:
        if any(u.username == username for u in self.state.staff_users.values()):
            return False
        self.state.staff_users[user_id] = FakeStaffUser(user_id, username, password_hash, role.value, sorted(shops))
        return True

    async def by_username(self, username: str) -> FakeStaffUser | None:
        return next((copy.copy(u) for u in self.state.staff_users.values() if u.username == username), None)

    async def failed_sign_in(self, user_id: str, now: datetime, limit: int, lock_for: Any) -> None:
        user = self.state.staff_users[user_id]
        user.failed_sign_ins += 1
        if user.failed_sign_ins >= limit:
            user.failed_sign_ins, user.locked_until = 0, now + lock_for

    async def signed_in_ok(self, user_id: str) -> None:
        user = self.state.staff_users[user_id]
        user.failed_sign_ins, user.locked_until = 0, None

    async def open_session(self, token_hash: bytes, user_id: str, now: datetime, expires_at: datetime) -> None:
        self.state.staff_sessions[token_hash] = (user_id, expires_at)

    async def signed_in(self, token_hash: bytes, now: datetime) -> Staff | None:
        found = self.state.staff_sessions.get(token_hash)
        if found is None or found[1] <= now or not self.state.staff_users[found[0]].active:
            return None
        user = self.state.staff_users[found[0]]
        return Staff(user.user_id, user.username, StaffRole(user.role), frozenset(user.shops))

    async def close_session(self, token_hash: bytes) -> None:
        self.state.staff_sessions.pop(token_hash, None)


class FakeDecisions:
    def __init__(self, state: State) -> None:
        self.state = state

    async def submitted(self, event_id: uuid.UUID, ticket_id: str, order_id: str, command_type: str,
                        staff: Staff, at: datetime) -> None:
        self.state.decisions[event_id] = views.Decision(
            decision_id=event_id, ticket_id=ticket_id, command_type=command_type, user_id=staff.user_id,
            submitted_at=at, outcome="ACCEPTED", outcome_code="", outcome_message="", outcome_at=None)

    async def settle(self, event_id: uuid.UUID, outcome: str, code: str, message: str, at: datetime) -> bool:
        found = self.state.decisions.get(event_id)
        if found is None or found.outcome != "ACCEPTED":
            return False
        self.state.decisions[event_id] = found.model_copy(update=dict(
            outcome=outcome, outcome_code=code, outcome_message=message, outcome_at=at))
        return True

    async def get(self, event_id: uuid.UUID) -> views.Decision | None:
        return self.state.decisions.get(event_id)


@dataclass(frozen=True)
class FakeTicketKey:
    ticket_id: str
    order_id: str
    shop_id: str


class FakeQueries:
    """The read side as far as the use-case tests need it (the SQL queries themselves are
    integration-tested against PostgreSQL, indexes and all)."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def erp_order_key(self, erp_order_id: uuid.UUID) -> FakeTicketKey | None:
        order = self.state.erp_orders.get(erp_order_id)
        return None if order is None else FakeTicketKey(order.ticket_id, order.order_id, order.shop_id)

    async def ticket_key(self, ticket_id: str) -> FakeTicketKey | None:
        ticket = self.state.tickets.get(ticket_id)
        return None if ticket is None else FakeTicketKey(ticket.ticket_id, ticket.order_id, ticket.shop_id)

    async def tickets(self, query: views.TicketFilter, shops: frozenset[str]) -> views.TicketPage:
        wanted = shops if query.shop is None else shops & {query.shop}
        items = [views.TicketSummary(
            ticket_id=t.ticket_id, ticket_no=t.ticket_no, order_id=t.order_id, shop_id=t.shop_id,
            type=t.type.value, status=t.status.value, refund_cents=t.refund_total_cents, currency=t.currency,
            applied_at=t.applied_at, reviewed_at=t.reviewed_at, ordered_at=None)
            for t in self.state.tickets.values() if t.shop_id in wanted
            and (query.status is None or t.status.value == query.status)]
        return views.TicketPage(items=items, page=1, page_size=query.page_size, has_more=False)


class FakeBackOfficeUnitOfWork(FakeUnitOfWork, BackOfficeUnitOfWork):
    def _open(self, state: State) -> None:
        self.staff, self.decisions, self.queries = FakeStaffAccounts(state), FakeDecisions(state), FakeQueries(state)


class FakeMonitoring:
    def __init__(self, state: State) -> None:
        self.state, self.tables = state, state.monitoring

    async def add_order(self, order: OrderFacts) -> bool:
        if order.order_id in self.tables.orders:
            return False
        self.tables.orders[order.order_id] = copy.deepcopy(order)
        return True

    async def order(self, order_id: str) -> OrderFacts | None:
        return copy.deepcopy(self.tables.orders.get(order_id))

    async def ticket(self, ticket_id: str) -> TrackedTicket | None:
        return copy.copy(self.tables.tickets.get(ticket_id))

    async def save_ticket(self, ticket: TrackedTicket) -> None:
        self.tables.tickets[ticket.ticket_id] = copy.copy(ticket)

    async def time_in_state(self, ticket: TrackedTicket, left_at: datetime) -> None:
        seconds = max((left_at - ticket.status_since).total_seconds(), 0.0)
        self.tables.state_times.append((ticket.shop_id, ticket.status, left_at, seconds))

    async def count(self, shop_id: str, day: date, metric: str, key1: str = "", key2: str = "", n: int = 1) -> None:
        key = (shop_id, day, metric, key1[:128], key2[:128])
        self.tables.counters[key] = self.tables.counters.get(key, 0) + n
        self.tables.changed_days.add((shop_id, day))

    async def buyer_activity(self, shop_id: str, buyer_id: str, since: datetime) -> tuple[int, int]:
        tickets = sum(1 for t in self.tables.tickets.values()
                      if t.shop_id == shop_id and t.buyer_id == buyer_id and t.opened_at >= since)
        orders = sum(1 for o in self.tables.orders.values()
                     if o.shop_id == shop_id and o.buyer_id == buyer_id and o.placed_at >= since)
        return tickets, orders

    async def flag_buyer(self, shop_id: str, buyer_id: str, ticket_id: str, flag: ReturnerFlag,
                         at: datetime) -> None:
        self.tables.buyer_flags[(shop_id, buyer_id)] = (ticket_id, flag)

    async def active_item(self, condition: str) -> WorkItem | None:
        return next((copy.deepcopy(i) for i in self.tables.items.values()
                     if i.condition == condition and i.state is not ItemState.RESOLVED), None)

    async def times_opened(self, condition: str) -> int:
        return sum(1 for i in self.tables.items.values() if i.condition == condition)

    async def item(self, item_id: uuid.UUID) -> WorkItem | None:
        return copy.deepcopy(self.tables.items.get(item_id))

    async def save_item(self, item: WorkItem) -> None:
        self.tables.items[item.item_id] = replace(item, changes=[])

    async def escalations_due(self, now: datetime, skip: Quarantine) -> list[DueItem]:
        return [DueItem(str(i.item_id), i.order_id) for i in sorted(self.tables.items.values(),
                                                                    key=lambda i: i.ack_due_at or now)
                if i.escalation_due(now) and not _skipped(self.state, skip, i.item_id)]

    async def line(self, order_id: str, line_no: int) -> Line | None:
        return self.tables.lines.get((order_id, line_no))  # frozen: no copy needed

    async def save_line(self, line: Line) -> None:
        self.tables.lines[(line.order_id, line.line_no)] = line

    async def changed_days(self, limit: int = 100) -> list[tuple[str, date]]:
        return sorted(self.tables.changed_days, key=lambda found: found[1])[:limit]

    async def claim_changed_day(self, shop_id: str, day: date) -> bool:
        if (shop_id, day) not in self.tables.changed_days:
            return False
        self.tables.changed_days.discard((shop_id, day))
        return True

    async def day_figures(self, shop_id: str, day: date) -> list[tuple[str, str, str, int]]:
        return [(metric, key1, key2, value) for (shop, on, metric, key1, key2), value in self.tables.counters.items()
                if shop == shop_id and on == day]


    async def counters_between(self, shop_id: str | None, first: date, last: date,
                               ) -> list[tuple[str, str, str, int]]:
        summed: dict[tuple[str, str, str], int] = {}
        for (shop, on, metric, key1, key2), value in self.tables.counters.items():
            if first <= on <= last and shop_id in (None, shop):
                summed[(metric, key1, key2)] = summed.get((metric, key1, key2), 0) + value
        return [(*key, value) for key, value in summed.items()]

    async def time_in_states(self, shop_id: str | None, since: datetime, until: datetime) -> list[TimeInState]:
        return time_in_state((status, seconds) for shop, status, left_at, seconds in self.tables.state_times
                             if shop_id in (None, shop) and since <= left_at < until)

    async def work_items(self, states: tuple[ItemState, ...], owner: str | None, limit: int,
                         order_id: str | None = None) -> list[WorkItem]:
        return sorted((copy.deepcopy(i) for i in self.tables.items.values()
                       if i.state in states and owner in (None, i.owner) and order_id in (None, i.order_id)),
                      key=lambda i: i.opened_at, reverse=True)[:limit]


class FakeMonitoringUnitOfWork(FakeUnitOfWork, MonitoringUnitOfWork):
    def _open(self, state: State) -> None:
        self.monitoring = FakeMonitoring(state)


class FakeDeadlines:
    """The buyer deadlines notifications keeps (``buyer_deadlines``)."""

    def __init__(self, state: State) -> None:
        self.rows = state.buyer_deadlines

    async def get(self, ticket_id: str, order_id: str) -> BuyerDeadline | None:
        found = self.rows.get(ticket_id)
        return None if found is None or found.order_id != order_id else replace(found)

    async def save(self, deadline: BuyerDeadline) -> None:
        self.rows[deadline.ticket_id] = replace(deadline)

    async def remove(self, ticket_id: str) -> None:
        self.rows.pop(ticket_id, None)

    async def reminders_due(self, now: datetime, skip: Any) -> list[DueItem]:
        due = sorted((d for d in self.rows.values() if d.reminded_at is None and d.remind_at <= now < d.deadline_at),
                     key=lambda d: d.remind_at)
        return [DueItem(d.ticket_id, d.order_id) for d in due]

    async def mark_reminded(self, ticket_id: str, deadline_at: datetime, now: datetime) -> bool:
        found = self.rows.get(ticket_id)
        if found is None or found.deadline_at != deadline_at or found.reminded_at is not None:
            return False
        found.reminded_at = now
        return True


class FakeNotificationsUnitOfWork(FakeUnitOfWork, NotificationsUnitOfWork):
    def _open(self, state: State) -> None:
        self.deadlines = FakeDeadlines(state)


class FakeSettlementOrders:
    """The orders settlement waits to enter (``settlement_orders``)."""

    def __init__(self, state: State) -> None:
        self.rows = state.settlement_orders

    async def get(self, order_id: str) -> SettlementOrder:
        return copy.deepcopy(self.rows.setdefault(order_id, SettlementOrder(order_id)))

    async def save(self, order: SettlementOrder, entered_on: date | None = None) -> None:
        self.rows[order.order_id] = copy.deepcopy(order)

    async def held(self, shop_id: str) -> list[SettlementOrder]:
        return [copy.deepcopy(o) for _, o in sorted(self.rows.items())
                if o.shop_id == shop_id and o.amounts is not None and o.held_because()]


class FakeEntries:
    """The lines of the merchants' statements (``settlement_entries``)."""

    def __init__(self, state: State) -> None:
        self.rows = state.settlement_entries

    async def add(self, entry: Entry, entered_on: date | None) -> None:
        self.rows.setdefault(entry.entry_id, (entry, entered_on))

    async def enter_waiting(self, order_id: str, entered_on: date) -> None:
        for entry_id, (entry, day) in list(self.rows.items()):
            if entry.order_id == order_id and day is None:
                self.rows[entry_id] = (entry, entered_on)

    async def statement(self, shop_id: str, first: date, last: date) -> list[StatementEntry]:
        found = [(day, entry) for entry, day in self.rows.values()
                 if entry.shop_id == shop_id and day is not None and first <= day <= last]
        found.sort(key=lambda f: (f[0], f[1].order_id, f[1].kind is not EntryKind.ORDER, f[1].occurred_at))
        return [StatementEntry(day, e.order_id, e.ticket_id, e.kind, e.currency, e.amounts) for day, e in found]


class FakeSettlementUnitOfWork(FakeUnitOfWork, SettlementUnitOfWork):
    def _open(self, state: State) -> None:
        self.orders, self.entries = FakeSettlementOrders(state), FakeEntries(state)
