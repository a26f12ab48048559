"""The back office's data: its own users, sessions and submitted decisions (it writes these), and
the read side over every worker's records (it writes none of those: see ``tables.ALSO_READS``).
Its unit of work hands out ``uow.staff``, ``uow.decisions`` and ``uow.queries``."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tables import (
    DeadLetterRow,
    ErpOrderRow,
    MonitoringBuyerFlagRow,
    MonitoringCounterRow,
    MonitoringLineRow,
    MonitoringStateTimeRow,
    MonitoringWorkItemRow,
    OrderRow,
    ReasonRow,
    ReceiptRow,
    RefundRow,
    ShipmentRow,
    StaffSessionRow,
    StaffUserRow,
    SubmittedDecisionRow,
    TicketAuditRow,
    TicketRow,
)
from services.common.uow import SqlUnitOfWork, UnitOfWork
from services.domain.figures import REFUNDED
from services.domain.line_state import LABELS, LineState

from . import views
from .staff import Staff, StaffRole

SCHEMA = "0013"  # its own tables, ticket-list indexes, sign-in lockout, monitoring's tables, ticket columns

# tickets ops approved that finance sees (DOMAIN.md: "only tickets that ops approved")
FINANCE_STATUSES = ("PENDING_REFUND", "PENDING_MANAGER", "REFUNDING", "REFUND_FAILED", "COMPLETED")
FAILED_ERP_STATUSES = ("FAILED", "CANCEL_FAILED")


class StaffUser(Protocol):
    user_id: str
    username: str
    password_hash: str
    role: str
    shops: list[str]
    active: bool
    locked_until: datetime | None


class StaffAccounts(Protocol):
    async def add(self, user_id: str, username: str, password_hash: str, role: StaffRole,
                  shops: list[str]) -> bool:
        """False when the username is taken."""

    async def by_username(self, username: str) -> StaffUser | None: ...

    async def failed_sign_in(self, user_id: str, now: datetime, limit: int, lock_for: timedelta) -> None:
        """Counts a wrong password; the ``limit``-th in a row locks the account for ``lock_for``."""

    async def signed_in_ok(self, user_id: str) -> None: ...

    async def open_session(self, token_hash: bytes, user_id: str, now: datetime, expires_at: datetime) -> None: ...

    async def signed_in(self, token_hash: bytes, now: datetime) -> Staff | None:
        """The session's user, if the session exists, has not expired and the user is active."""

    async def close_session(self, token_hash: bytes) -> None: ...


class Decisions(Protocol):
    async def submitted(self, event_id: uuid.UUID, ticket_id: str, order_id: str, command_type: str,
                        staff: Staff, at: datetime) -> None: ...

    async def settle(self, event_id: uuid.UUID, outcome: str, code: str, message: str, at: datetime) -> bool:
        """Records the worker's answer once (the first one counts); False when not ours or settled."""

    async def get(self, event_id: uuid.UUID) -> views.Decision | None: ...


class TicketKey(Protocol):
    ticket_id: str
    order_id: str
    shop_id: str


class Queries(Protocol):
    async def ticket_key(self, ticket_id: str) -> TicketKey | None: ...

    async def tickets(self, query: views.TicketFilter, shops: frozenset[str]) -> views.TicketPage: ...

    async def detail(self, ticket_id: str) -> views.TicketDetail | None: ...

    async def finance_refunds(self, shops: frozenset[str], limit: int) -> list[views.FinanceRefund]: ...

    async def failures(self, shops: frozenset[str]) -> views.Failures: ...

    async def dead_letters(self, limit: int) -> list[views.DeadLetter]: ...

    async def reasons(self, ticket_type: str) -> list[views.ReasonView]: ...

    async def dead_letter(self, dead_letter_id: uuid.UUID) -> views.DeadLetterDetail | None: ...

    async def erp_order_key(self, erp_order_id: uuid.UUID) -> TicketKey | None: ...

    async def work_items(self, shops: frozenset[str] | None, owner: str | None, include_resolved: bool,
                         limit: int) -> list[views.WorkItem]:
        """Newest first: every item when ``shops`` is None, else those of tickets or orders in them."""

    async def work_item(self, item_id: uuid.UUID) -> views.WorkItem | None: ...

    async def counters(self, shops: frozenset[str], first: date, last: date) -> list[tuple[str, str, str, int]]:
        """Monitoring's (metric, key1, key2, value) summed over the shops and days."""

    async def refunds_per_day(self, shops: frozenset[str], first: date, last: date) -> list[views.DayAmount]: ...

    async def time_in_state(self, shops: frozenset[str], since: datetime, until: datetime) -> list[views.StateTime]:
        """p50 / p95 / max per state of the stays that ended in [since, until) (nearest rank)."""


class BackOfficeUnitOfWork(UnitOfWork):
    staff: StaffAccounts
    decisions: Decisions
    queries: Queries


class SqlBackOfficeUnitOfWork(SqlUnitOfWork, BackOfficeUnitOfWork):
    def _open(self, session: AsyncSession) -> None:
        self.staff = StaffRepository(session)
        self.decisions = DecisionRepository(session)
        self.queries = QueryRepository(session)


class StaffRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, user_id: str, username: str, password_hash: str, role: StaffRole,
                  shops: list[str]) -> bool:
        stmt = insert(StaffUserRow).values(user_id=user_id, username=username, password_hash=password_hash,
                                           role=role.value, shops=sorted(set(shops)), active=True)
        return (await self.session.execute(stmt.on_conflict_do_nothing().returning(StaffUserRow.user_id))
                ).scalar_one_or_none() is not None

    async def by_username(self, username: str) -> StaffUserRow | None:
        return (await self.session.execute(select(StaffUserRow).where(StaffUserRow.username == username))
                ).scalar_one_or_none()

    async def failed_sign_in(self, user_id: str, now: datetime, limit: int, lock_for: timedelta) -> None:
        row = await self.session.get(StaffUserRow, user_id, with_for_update=True)
        if row is None:
            return
        row.failed_sign_ins += 1
        if row.failed_sign_ins >= limit:
            row.failed_sign_ins, row.locked_until = 0, now + lock_for

    async def signed_in_ok(self, user_id: str) -> None:
        await self.session.execute(update(StaffUserRow).where(StaffUserRow.user_id == user_id)
                                   .values(failed_sign_ins=0, locked_until=None))

    async def open_session(self, token_hash: bytes, user_id: str, now: datetime, expires_at: datetime) -> None:
        await self.session.execute(delete(StaffSessionRow).where(StaffSessionRow.expires_at < now))
        self.session.add(StaffSessionRow(token_hash=token_hash, user_id=user_id, created_at=now,
                                         expires_at=expires_at))

    async def signed_in(self, token_hash: bytes, now: datetime) -> Staff | None:
        row = (await self.session.execute(
            select(StaffUserRow).join(StaffSessionRow, StaffSessionRow.user_id == StaffUserRow.user_id)
            .where(StaffSessionRow.token_hash == token_hash, StaffSessionRow.expires_at > now,
                   StaffUserRow.active.is_(True)))).scalar_one_or_none()
        if row is None:
            return None
        return Staff(user_id=row.user_id, username=row.username, role=StaffRole(row.role),
                     shops=frozenset(row.shops))

    async def close_session(self, token_hash: bytes) -> None:
        await self.session.execute(delete(StaffSessionRow).where(StaffSessionRow.token_hash == token_hash))


class DecisionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def submitted(self, event_id: uuid.UUID, ticket_id: str, order_id: str, command_type: str,
                        staff: Staff, at: datetime) -> None:
        self.session.add(SubmittedDecisionRow(
            event_id=event_id, ticket_id=ticket_id, order_id=order_id, command_type=command_type,
            user_id=staff.user_id, role=staff.role.value, submitted_at=at, outcome="ACCEPTED",
            outcome_code="", outcome_message=""))

    async def settle(self, event_id: uuid.UUID, outcome: str, code: str, message: str, at: datetime) -> bool:
        result = await self.session.execute(
            update(SubmittedDecisionRow)
            .where(SubmittedDecisionRow.event_id == event_id, SubmittedDecisionRow.outcome == "ACCEPTED")
            .values(outcome=outcome, outcome_code=code[:64], outcome_message=message[:500], outcome_at=at)
            .returning(SubmittedDecisionRow.event_id))
        return result.scalar_one_or_none() is not None

    async def get(self, event_id: uuid.UUID) -> views.Decision | None:
        row = await self.session.get(SubmittedDecisionRow, event_id)
        return None if row is None else _decision(row)


def _decision(row: SubmittedDecisionRow) -> views.Decision:
    return views.Decision(decision_id=row.event_id, ticket_id=row.ticket_id, command_type=row.command_type,
                          user_id=row.user_id, submitted_at=row.submitted_at, outcome=row.outcome,
                          outcome_code=row.outcome_code, outcome_message=row.outcome_message,
                          outcome_at=row.outcome_at)


class QueryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ticket_key(self, ticket_id: str) -> Any:
        return (await self.session.execute(
            select(TicketRow.ticket_id, TicketRow.order_id, TicketRow.shop_id)
            .where(TicketRow.ticket_id == ticket_id))).one_or_none()

    def list_statement(self, query: views.TicketFilter, shops: frozenset[str]) -> Select[TicketRow, datetime]:
        """The ticket list as one statement (a test EXPLAINs it): shop-scoped, sorted by applied_at,
        so PostgreSQL reads one of the (shop_id, …, applied_at) indexes in order and stops early."""
        wanted = sorted(shops if query.shop is None else shops & {query.shop})
        stmt = (select(TicketRow, OrderRow.placed_at)
                .outerjoin(OrderRow, OrderRow.order_id == TicketRow.order_id)
                .where(TicketRow.shop_id.in_(wanted)))
        equal: list[tuple[Any, Any]] = [
            (TicketRow.ticket_no, query.ticket_no), (TicketRow.order_id, query.order_id),
            (TicketRow.type, query.type), (TicketRow.status, query.status), (TicketRow.buyer_id, query.buyer)]
        stmt = stmt.where(*[column == value for column, value in equal if value is not None])
        ranges: list[tuple[Any, Any, Any]] = [(TicketRow.applied_at, query.applied_from, query.applied_to),
                                              (OrderRow.placed_at, query.ordered_from, query.ordered_to)]
        for column, since, until in ranges:
            if since is not None:
                stmt = stmt.where(column >= since)
            if until is not None:
                stmt = stmt.where(column < until)
        order = TicketRow.applied_at.desc() if query.newest_first else TicketRow.applied_at.asc()
        tie = TicketRow.ticket_id.desc() if query.newest_first else TicketRow.ticket_id.asc()
        return (stmt.order_by(order, tie).offset((query.page - 1) * query.page_size)
                .limit(query.page_size + 1))

    async def tickets(self, query: views.TicketFilter, shops: frozenset[str]) -> views.TicketPage:
        rows = (await self.session.execute(self.list_statement(query, shops))).all()
        return views.TicketPage(items=[_summary(row, placed_at) for row, placed_at in rows[:query.page_size]],
                                page=query.page, page_size=query.page_size, has_more=len(rows) > query.page_size)

    async def detail(self, ticket_id: str) -> views.TicketDetail | None:
        ticket = await self.session.get(TicketRow, ticket_id)
        if ticket is None:
            return None
        order = await self.session.get(OrderRow, ticket.order_id)
        unit_prices = {ln["line_no"]: ln.get("unit_price_cents") for ln in (order.lines if order else [])}
        past = (await self.session.execute(select(func.count()).select_from(TicketRow).where(
            TicketRow.buyer_id == ticket.buyer_id, TicketRow.ticket_id != ticket.ticket_id))).scalar_one()
        audit = (await self.session.execute(select(TicketAuditRow).where(TicketAuditRow.ticket_id == ticket_id)
                                            .order_by(TicketAuditRow.id))).scalars().all()
        receipts = await self._of_ticket(ReceiptRow, ReceiptRow.received_at, ticket_id)
        shipments = await self._of_ticket(ShipmentRow, ShipmentRow.requested_at, ticket_id)
        erp = await self._of_ticket(ErpOrderRow, ErpOrderRow.created_at, ticket_id)
        refund = (await self.session.execute(select(RefundRow).where(RefundRow.ticket_id == ticket_id))
                  ).scalar_one_or_none()
        decisions = (await self.session.execute(
            select(SubmittedDecisionRow).where(SubmittedDecisionRow.ticket_id == ticket_id)
            .order_by(SubmittedDecisionRow.submitted_at))).scalars().all()
        return views.TicketDetail(
            ticket=_summary(ticket, order.placed_at if order else None),
            reason_code=ticket.reason_code, description=ticket.description,
            before_shipment=ticket.before_shipment, paid_at=ticket.paid_at,
            ops_reviewer_id=ticket.ops_reviewer_id, finance_reviewer_id=ticket.finance_reviewer_id,
            manager_id=ticket.manager_id, refund_coupon=ticket.refund_coupon,
            refund_virtual_currency=ticket.refund_virtual_currency, refund_shipping=ticket.refund_shipping,
            deadline_at=ticket.deadline_at, deadline_kind=ticket.deadline_kind, close_reason=ticket.close_reason,
            buyer_id=ticket.buyer_id, buyer_after_sales_count=past,
            return_carrier=ticket.return_carrier, return_waybill=ticket.return_waybill,
            lines=[views.DetailLine(line_no=ln["line_no"], sku=ln["sku"],
                                    unit_price_cents=unit_prices.get(ln["line_no"]),
                                    quantity=ln["quantity"], cap_cents=ln["cap_cents"],
                                    refund_cents=ln["refund_cents"], exchange_sku=ln.get("exchange_sku"))
                   for ln in ticket.lines],
            receipts=[views.Receipt(receipt_id=r.receipt_id, receipt_type=r.receipt_type, lines=r.lines,
                                    inspection=r.inspection, operator=r.operator, received_at=r.received_at,
                                    note=r.note) for r in receipts],
            shipments=[views.Shipment(shipment_id=s.shipment_id, shipment_type=s.shipment_type, lines=s.lines,
                                      status=s.status, carrier=s.carrier, waybill=s.waybill,
                                      dispatched_at=s.dispatched_at) for s in shipments],
            erp_orders=[views.ErpOrder(erp_order_id=e.erp_order_id, kind=e.kind, status=e.status,
                                       attempts=e.attempts, last_error=e.last_error, erp_ref=e.erp_ref)
                        for e in erp],
            refund=None if refund is None else views.RefundState(
                refund_id=refund.refund_id, status=refund.status, amount_cents=refund.amount_cents,
                attempts=refund.attempts, last_error=refund.last_error, completed_at=refund.completed_at),
            buyer_flag=await self._buyer_flag(ticket.shop_id, ticket.buyer_id), return_address=ticket.return_address,
            line_states=await self._line_states(ticket.order_id, {ln["line_no"] for ln in ticket.lines}),
            timeline=[views.TimelineEntry(at=a.at, from_status=a.from_status, to_status=a.to_status,
                                          actor_role=a.actor_role, actor_id=a.actor_id, action=a.action,
                                          reason=a.reason, amount_before_cents=a.amount_before_cents,
                                          amount_after_cents=a.amount_after_cents) for a in audit],
            decisions=[_decision(row) for row in decisions])

    async def _buyer_flag(self, shop_id: str, buyer_id: str) -> views.BuyerFlag | None:
        flag = await self.session.get(MonitoringBuyerFlagRow, (shop_id, buyer_id))
        if flag is None:
            return None
        return views.BuyerFlag(flagged_at=flag.flagged_at, reason=flag.reason, window_days=flag.window_days,
                               tickets_in_window=flag.tickets_in_window, orders_in_window=flag.orders_in_window,
                               max_tickets=flag.max_tickets, max_rate_percent=flag.max_rate_percent,
                               min_orders=flag.min_orders)

    async def _line_states(self, order_id: str, line_nos: set[int]) -> list[views.LineState]:
        rows = (await self.session.execute(select(MonitoringLineRow).where(
            MonitoringLineRow.order_id == order_id, MonitoringLineRow.line_no.in_(sorted(line_nos)))
            .order_by(MonitoringLineRow.line_no))).scalars().all()
        return [views.LineState(line_no=r.line_no, state=r.state, label=_label(r.state),
                                in_progress_units=sum(int(p["units"]) for p in r.in_progress),
                                refunded_units=r.refunded_units, refunded_cents=r.refunded_cents,
                                exchanged_units=r.exchanged_units, repaired_units=r.repaired_units) for r in rows]

    async def _of_ticket(self, model: Any, at: Any, ticket_id: str) -> list[Any]:
        return list((await self.session.execute(select(model).where(model.ticket_id == ticket_id).order_by(at))
                     ).scalars().all())

    async def finance_refunds(self, shops: frozenset[str], limit: int) -> list[views.FinanceRefund]:
        rows = (await self.session.execute(
            select(TicketRow, OrderRow.lines)
            .outerjoin(OrderRow, OrderRow.order_id == TicketRow.order_id)
            .where(TicketRow.shop_id.in_(sorted(shops)), TicketRow.status.in_(FINANCE_STATUSES),
                   TicketRow.ops_reviewer_id.is_not(None))
            .order_by(TicketRow.applied_at.desc()).limit(limit))).all()
        refunds = []
        for ticket, order_lines in rows:
            prices = {ln["line_no"]: ln.get("unit_price_cents") for ln in order_lines or []}
            refunds.append(views.FinanceRefund(
                ticket_id=ticket.ticket_id, ticket_no=ticket.ticket_no, order_id=ticket.order_id,
                shop_id=ticket.shop_id, status=ticket.status, applied_at=ticket.applied_at,
                reviewed_at=ticket.reviewed_at, total_cents=ticket.refund_total_cents, currency=ticket.currency,
                lines=[views.FinanceLine(line_no=ln["line_no"], sku=ln["sku"],
                                         unit_price_cents=prices.get(ln["line_no"]), quantity=ln["quantity"],
                                         refund_cents=ln["refund_cents"]) for ln in ticket.lines]))
        return refunds

    async def failures(self, shops: frozenset[str]) -> views.Failures:
        wanted = sorted(shops)
        refunds = (await self.session.execute(
            select(TicketRow, OrderRow.placed_at).outerjoin(OrderRow, OrderRow.order_id == TicketRow.order_id)
            .where(TicketRow.shop_id.in_(wanted), TicketRow.status == "REFUND_FAILED")
            .order_by(TicketRow.applied_at.desc()).limit(200))).all()
        erp = (await self.session.execute(
            select(ErpOrderRow).where(ErpOrderRow.shop_id.in_(wanted), ErpOrderRow.status.in_(FAILED_ERP_STATUSES))
            .order_by(ErpOrderRow.created_at.desc()).limit(200))).scalars().all()
        return views.Failures(
            refunds=[_summary(row, placed_at) for row, placed_at in refunds],
            erp_orders=[views.FailedErpOrder(erp_order_id=e.erp_order_id, ticket_id=e.ticket_id,
                                             ticket_no=e.ticket_no, kind=e.kind, status=e.status,
                                             attempts=e.attempts, last_error=e.last_error) for e in erp])

    async def dead_letters(self, limit: int) -> list[views.DeadLetter]:
        rows = (await self.session.execute(select(DeadLetterRow).order_by(DeadLetterRow.failed_at.desc())
                                           .limit(limit))).scalars().all()
        return [views.DeadLetter(dead_letter_id=r.dead_letter_id, source_topic=r.source_topic,
                                 reason_code=r.reason_code, reason=r.reason, original_type=r.original_type,
                                 producer=r.producer, failed_at=r.failed_at, replays=r.replays) for r in rows]


    async def dead_letter(self, dead_letter_id: uuid.UUID) -> views.DeadLetterDetail | None:
        r = await self.session.get(DeadLetterRow, dead_letter_id)
        if r is None:
            return None
        return views.DeadLetterDetail(
            dead_letter_id=r.dead_letter_id, source_topic=r.source_topic, reason_code=r.reason_code,
            reason=r.reason, original_type=r.original_type, producer=r.producer, failed_at=r.failed_at,
            replays=r.replays, partition=r.partition, offset=r.offset, consumer_group=r.consumer_group,
            error_class=r.error_class, original_event_id=r.original_event_id, original_size=r.original_size,
            original_sha256=r.original_sha256, original_truncated=r.original_truncated, replayed_at=r.replayed_at)

    async def reasons(self, ticket_type: str) -> list[views.ReasonView]:
        rows = (await self.session.execute(select(ReasonRow).where(ReasonRow.type == ticket_type)
                                           .order_by(ReasonRow.position))).scalars().all()
        return [views.ReasonView(code=r.code, label=r.label, visible=r.visible, position=r.position) for r in rows]

    async def erp_order_key(self, erp_order_id: uuid.UUID) -> Any:
        return (await self.session.execute(
            select(ErpOrderRow.ticket_id, ErpOrderRow.order_id, ErpOrderRow.shop_id)
            .where(ErpOrderRow.erp_order_id == erp_order_id))).one_or_none()


    def _work_items(self) -> Select[MonitoringWorkItemRow, str]:
        """Items with the shop of their ticket (or, off a ticket, of their order)."""
        item = MonitoringWorkItemRow
        shop = func.coalesce(TicketRow.shop_id, OrderRow.shop_id).label("shop_id")
        return (select(item, shop).outerjoin(TicketRow, TicketRow.ticket_id == item.ticket_id)
                .outerjoin(OrderRow, OrderRow.order_id == item.order_id))

    async def work_items(self, shops: frozenset[str] | None, owner: str | None, include_resolved: bool,
                         limit: int) -> list[views.WorkItem]:
        item = MonitoringWorkItemRow
        stmt = self._work_items()
        if not include_resolved:
            stmt = stmt.where(item.state != "RESOLVED")
        if owner is not None:
            stmt = stmt.where(item.owner == owner)
        if shops is not None:
            stmt = stmt.where(func.coalesce(TicketRow.shop_id, OrderRow.shop_id).in_(sorted(shops)))
        rows = (await self.session.execute(stmt.order_by(item.opened_at.desc(), item.item_id).limit(limit))).all()
        return [_work_item(row, shop) for row, shop in rows]

    async def work_item(self, item_id: uuid.UUID) -> views.WorkItem | None:
        found = (await self.session.execute(self._work_items().where(MonitoringWorkItemRow.item_id == item_id))
                 ).one_or_none()
        return None if found is None else _work_item(found[0], found[1])

    async def counters(self, shops: frozenset[str], first: date, last: date) -> list[tuple[str, str, str, int]]:
        counter = MonitoringCounterRow
        rows = (await self.session.execute(
            select(counter.metric, counter.key1, counter.key2, func.sum(counter.value).label("value"))
            .where(counter.shop_id.in_(sorted(shops)), counter.day >= first, counter.day <= last)
            .group_by(counter.metric, counter.key1, counter.key2))).all()
        return [(r.metric, r.key1, r.key2, int(r.value)) for r in rows]

    async def refunds_per_day(self, shops: frozenset[str], first: date, last: date) -> list[views.DayAmount]:
        counter = MonitoringCounterRow
        rows = (await self.session.execute(
            select(counter.day, counter.key1, func.sum(counter.value).label("cents"))
            .where(counter.shop_id.in_(sorted(shops)), counter.metric == REFUNDED, counter.day >= first,
                   counter.day <= last)
            .group_by(counter.day, counter.key1).order_by(counter.day, counter.key1))).all()
        return [views.DayAmount(day=r.day, currency=r.key1, cents=int(r.cents)) for r in rows]

    async def time_in_state(self, shops: frozenset[str], since: datetime, until: datetime) -> list[views.StateTime]:
        stay = MonitoringStateTimeRow
        rows = (await self.session.execute(
            select(stay.status, func.count().label("tickets"),
                   func.percentile_disc(0.5).within_group(stay.seconds).label("p50"),
                   func.percentile_disc(0.95).within_group(stay.seconds).label("p95"),
                   func.max(stay.seconds).label("longest"))
            .where(stay.shop_id.in_(sorted(shops)), stay.left_at >= since, stay.left_at < until)
            .group_by(stay.status).order_by(stay.status))).all()
        return [views.StateTime(status=r.status, tickets=int(r.tickets), p50_seconds=float(r.p50),
                                p95_seconds=float(r.p95), max_seconds=float(r.longest)) for r in rows]


def _label(state: str) -> str:
    """The order page's words for a line state (a state this code does not know yet shows as is)."""
    return LABELS[LineState(state)] if state in LineState.__members__ else state


def _work_item(row: MonitoringWorkItemRow, shop_id: str | None) -> views.WorkItem:
    return views.WorkItem(
        item_id=row.item_id, kind=row.kind, severity=row.severity, owner=row.owner, state=row.state,
        order_id=row.order_id, ticket_id=row.ticket_id, shop_id=shop_id, message=row.message,
        opened_at=row.opened_at, last_seen_at=row.last_seen_at, ack_due_at=row.ack_due_at,
        occurrences=row.occurrences, escalations=row.escalations, acknowledged_by=row.acknowledged_by,
        resolved_by=row.resolved_by, note=row.note)


def _summary(row: TicketRow, placed_at: datetime | None) -> views.TicketSummary:
    return views.TicketSummary(
        ticket_id=row.ticket_id, ticket_no=row.ticket_no, order_id=row.order_id, shop_id=row.shop_id,
        type=row.type, status=row.status, refund_cents=row.refund_total_cents, currency=row.currency,
        applied_at=row.applied_at, reviewed_at=row.reviewed_at, ordered_at=placed_at)
