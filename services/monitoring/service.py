"""Monitoring's use cases: every fact that moves a figure adds to it in the same transaction as
its inbox row, so a redelivery adds nothing and a restart loses nothing; figures are exact,
never sampled. Days are the reporting time zone's (a shop in Shanghai closes its day at
midnight there, not in UTC).

- After-sales rate: units in tickets opened on a day ÷ units sold on that day, per sku and
  category (``units_sold`` from OrderPlaced, ``units_in_tickets`` from TicketOpened).
- Reasons per type (``tickets_opened``), refunds per day (``refunded`` from the settlement
  adjustment finance writes when the channel paid: lines and shipping), refunds failed and
  retried (ticket moves into REFUND_FAILED and out of it to REFUNDING).
- Time in state: each state a ticket leaves, with its duration (p50/p95/max are read from those).
- SLA breaches (the scheduler's ``*_SLA_BREACHED`` and ``RECEIPT_OVERDUE`` alerts) per state the
  ticket was in; integration errors (ERP refusals and give-ups, WMS mismatches and failed
  intercepts, dead letters of the WMS and ERP topics); dead letters per topic and reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from contracts import Envelope, Money
from contracts import aftersales as c
from contracts import monitoring as m
from contracts.admin import AcknowledgeWorkItem, ResolveWorkItem
from contracts.erp import ErpOrderAcknowledged
from contracts.ops import DeadLetter, DeadLetterSummary, OpsAlert, SettlementAdjusted
from contracts.ops import Severity as AlertSeverity
from contracts.orders import OrderPlaced
from contracts.topics import ERP_ACKS, WMS_EVENTS
from services.common.quarantine import DueItem, Quarantine
from services.common.routes import Deps, PeriodicJob, periodic
from services.domain import errors, figures, ids
from services.domain.figures import Figures, TimeInState
from services.domain.line_state import Line
from services.domain.model import AfterSalesType
from services.domain.serial_returner import serial_returner
from services.domain.work_queue import DEFAULT_ACK_WITHIN, ItemState, Severity, WorkItem, condition_of

from .repository import MonitoringUnitOfWork, OrderFacts, TrackedTicket

DEAD_LETTERS_WAITING = "DEAD_LETTERS_WAITING"  # one admins' item while dead letters keep coming
DEAD_LETTERS_CONDITION_ORDER = "dead-letters"
ESCALATED = "WORK_ITEM_ESCALATED"  # monitoring's own alert for the pager; not a new item
SLA_KINDS_END = ("_SLA_BREACHED",)
INTEGRATION_KINDS = {"ERP_SYNC_FAILED": "ERP", "INTERCEPT_FAILED": "WMS", "INSPECTION_MISMATCH": "WMS",
                     "UNEXPECTED_RECEIPT": "WMS"}
DEAD_LETTER_SYSTEMS = {WMS_EVENTS.name: "WMS", ERP_ACKS.name: "ERP"}
ALL_SHOPS = ""  # figures with no shop (dead letters: the message may not even name one)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_of(deps: Deps, at: datetime) -> date:
    return at.astimezone(_zone(deps.settings.reporting_timezone)).date()


def ack_within(deps: Deps) -> dict[Severity, timedelta]:
    minutes = deps.settings.work_item_ack_minutes
    return {severity: timedelta(minutes=minutes[severity.value]) if severity.value in minutes
            else DEFAULT_ACK_WITHIN[severity] for severity in Severity}


# ---------------------------------------------------------------- orders and tickets
async def order_placed(envelope: Envelope[OrderPlaced], uow: MonitoringUnitOfWork, deps: Deps) -> None:
    placed = envelope.payload
    facts = OrderFacts(placed.order_id, placed.shop_id, placed.buyer_id, placed.placed_at,
                       [{"line_no": ln.line_no, "sku": ln.sku, "category": ln.category, "quantity": ln.quantity}
                        for ln in placed.lines])
    if not await uow.monitoring.add_order(facts):
        return  # the order system announced it again (a new event id): sold once
    day = day_of(deps, placed.placed_at)
    for ln in placed.lines:
        await uow.monitoring.count(placed.shop_id, day, figures.UNITS_SOLD, ln.sku, ln.category, ln.quantity)
        line = await uow.monitoring.line(placed.order_id, ln.line_no)
        if line is not None and line.quantity != ln.quantity:
            # a ticket on the line came first (another topic, another partition): the line took the
            # ticket's units for the ordered ones; the order page is told the line as it is
            corrected = replace(line, quantity=ln.quantity)
            ticket_id = _last_ticket(corrected)
            if ticket_id is None:  # not made by a ticket: nothing to tell the order page about
                await uow.monitoring.save_line(corrected)
            else:
                await _line_changed(uow, corrected, ticket_id, envelope)


async def ticket_opened(envelope: Envelope[c.TicketOpened], uow: MonitoringUnitOfWork, deps: Deps) -> None:
    view = envelope.payload.ticket
    if await uow.monitoring.ticket(view.ticket_id) is not None:
        return
    await uow.monitoring.save_ticket(_tracked(view, str(view.status), envelope.occurred_at))
    day = day_of(deps, view.applied_at)
    order = await uow.monitoring.order(view.order_id)
    await uow.monitoring.count(view.shop_id, day, figures.TICKETS_OPENED, view.type.value, view.reason_code)
    for ln in view.lines:
        category = order.category(ln.line_no) if order else ""
        await uow.monitoring.count(view.shop_id, day, figures.UNITS_IN_TICKETS, ln.sku, category, ln.quantity)
        line = await _line(uow, view, ln, order)
        await _line_changed(uow, line.opened(view.ticket_id, AfterSalesType(view.type.value), ln.quantity),
                            view.ticket_id, envelope)
    await _check_buyer(uow, deps, view, envelope)


async def ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: MonitoringUnitOfWork, deps: Deps) -> None:
    event = envelope.payload
    view = event.ticket
    tracked = await uow.monitoring.ticket(view.ticket_id)
    at = envelope.occurred_at
    if tracked is None:  # opened before monitoring kept tickets: followed from here on
        tracked = _tracked(view, str(event.to_status), at)
    else:
        if tracked.status == str(event.to_status):
            return  # a move this ticket made already (the same status again changes no figure)
        await uow.monitoring.time_in_state(tracked, at)
        tracked.status, tracked.status_since = str(event.to_status), at
    await uow.monitoring.save_ticket(tracked)
    day = day_of(deps, at)
    if event.to_status == c.TicketStatus.REFUND_FAILED:
        await uow.monitoring.count(view.shop_id, day, figures.REFUNDS_FAILED)
    if event.from_status == c.TicketStatus.REFUND_FAILED and event.to_status == c.TicketStatus.REFUNDING:
        await uow.monitoring.count(view.shop_id, day, figures.REFUNDS_RETRIED)
    if event.to_status in (c.TicketStatus.COMPLETED, c.TicketStatus.CLOSED):
        order = await uow.monitoring.order(view.order_id)
        for ln in view.lines:
            line = await _line(uow, view, ln, order)
            ended = line.ended(view.ticket_id, AfterSalesType(view.type.value), ln.quantity,
                               completed=event.to_status == c.TicketStatus.COMPLETED, refund_cents=ln.refund.cents)
            await _line_changed(uow, ended, view.ticket_id, envelope)


def _tracked(view: c.TicketView, status: str, since: datetime) -> TrackedTicket:
    return TrackedTicket(view.ticket_id, view.order_id, view.shop_id, view.buyer_id, view.type.value,
                         view.reason_code, status, since, view.applied_at)


async def settlement_adjusted(envelope: Envelope[SettlementAdjusted], uow: MonitoringUnitOfWork,
                              deps: Deps) -> None:
    adjusted = envelope.payload
    day = day_of(deps, envelope.occurred_at)
    await uow.monitoring.count(adjusted.shop_id, day, figures.REFUNDED, adjusted.refund.currency, "",
                               adjusted.refund.cents)
    await uow.monitoring.count(adjusted.shop_id, day, figures.REFUNDS_COMPLETED)


async def _line(uow: MonitoringUnitOfWork, view: c.TicketView, ln: c.TicketLineView,
                order: OrderFacts | None) -> Line:
    """The line as monitoring knows it, or new (ordered quantity from the order facts if read)."""
    found = await uow.monitoring.line(view.order_id, ln.line_no)
    if found is not None:
        return found
    quantity = next((int(o["quantity"]) for o in order.lines if o["line_no"] == ln.line_no), ln.quantity) \
        if order else ln.quantity
    return Line(view.order_id, ln.line_no, ln.sku, quantity, currency=ln.refund.currency)


def _last_ticket(line: Line) -> str | None:
    """The ticket a line's latest change is told with (a line is made by a ticket's event)."""
    if line.in_progress:
        return line.in_progress[-1].ticket_id
    return line.ticket_ids_done[-1] if line.ticket_ids_done else None


async def _line_changed(uow: MonitoringUnitOfWork, line: Line, ticket_id: str, cause: Envelope[Any]) -> None:
    await uow.monitoring.save_line(line)
    uow.publish(m.LineAfterSalesChanged(
        order_id=line.order_id, line_no=line.line_no, sku=line.sku, quantity=line.quantity,
        state=m.LineState(line.state.value),
        label=line.label, in_progress_types=sorted({c.AfterSalesType(p.type.value) for p in line.in_progress}),
        in_progress_units=sum(p.units for p in line.in_progress), refunded_units=line.refunded_units,
        refunded=Money(cents=line.refunded_cents, currency=line.currency),
        exchanged_units=line.exchanged_units, repaired_units=line.repaired_units, ticket_id=ticket_id),
        key=line.order_id, cause=cause)


async def _check_buyer(uow: MonitoringUnitOfWork, deps: Deps, view: c.TicketView, cause: Envelope[Any]) -> None:
    """The serial-returner rule on the buyer's tickets and orders in the shop's window."""
    policy = deps.settings.policy_for(view.shop_id)
    since = view.applied_at - policy.serial_returner_window
    tickets, orders = await uow.monitoring.buyer_activity(view.shop_id, view.buyer_id, since)
    flag = serial_returner(tickets, orders, policy)
    if flag is None:
        return
    await uow.monitoring.flag_buyer(view.shop_id, view.buyer_id, view.ticket_id, flag, view.applied_at)
    uow.publish(m.BuyerFlagged(
        shop_id=view.shop_id, buyer_id=view.buyer_id, ticket_id=view.ticket_id, window_days=flag.window_days,
        tickets_in_window=flag.tickets_in_window, orders_in_window=flag.orders_in_window,
        max_tickets=flag.max_tickets, max_rate_percent=flag.max_rate_percent, min_orders_for_rate=flag.min_orders,
        reason=flag.reason, flagged_at=view.applied_at), key=view.order_id, cause=cause)


# ---------------------------------------------------------------- alerts and integration errors
async def alert(envelope: Envelope[OpsAlert], uow: MonitoringUnitOfWork, deps: Deps) -> None:
    """An alert opens a work item, or adds to the open one of its condition. SLA and integration
    alerts are counted when they open an item: a repeat of an open condition is the same breach."""
    raised = envelope.payload
    if raised.kind == ESCALATED and envelope.producer == uow.producer:
        return  # our own escalation, for the pager: the item it escalated is already up to date
    if not await _work_item(uow, deps, raised, envelope):
        return
    tracked = await uow.monitoring.ticket(raised.ticket_id) if raised.ticket_id else None
    shop = tracked.shop_id if tracked else ALL_SHOPS
    day = day_of(deps, envelope.occurred_at)
    if raised.kind.endswith(SLA_KINDS_END) or raised.kind == "RECEIPT_OVERDUE":
        await uow.monitoring.count(shop, day, figures.SLA_BREACHES, tracked.status if tracked else "", raised.kind)
    if raised.kind in INTEGRATION_KINDS:
        await uow.monitoring.count(shop, day, figures.INTEGRATION_ERRORS, INTEGRATION_KINDS[raised.kind], raised.kind)


async def dead_letters_summarised(envelope: Envelope[DeadLetterSummary], uow: MonitoringUnitOfWork,
                                  deps: Deps) -> None:
    """Dead letters since the last summary are work for the admins: one item while any wait (each
    summary adds an occurrence), resolved once they are replayed or judged."""
    summary = envelope.payload
    if summary.total == 0:
        return
    worst = sorted(summary.counts, key=lambda count: -count.count)[:3]
    listed = ", ".join(f"{count.source_topic} {count.reason_code} ×{count.count}" for count in worst)
    raised = OpsAlert(kind=DEAD_LETTERS_WAITING, severity=AlertSeverity.WARNING,
                      message=f"{summary.total} new dead letters: {listed}"[:500],
                      order_id=DEAD_LETTERS_CONDITION_ORDER)
    await _work_item(uow, deps, raised, envelope)


async def _work_item(uow: MonitoringUnitOfWork, deps: Deps, raised: OpsAlert, cause: Envelope[Any]) -> bool:
    """True when the alert opened a new item (False: it repeated an unresolved one)."""
    severity, now = Severity(raised.severity.value), cause.occurred_at
    condition = condition_of(raised.kind, raised.order_id, raised.ticket_id)
    item = await uow.monitoring.active_item(condition)
    if item is None:  # its id: the condition's n-th item (the same in a rebuild, whoever raised it when)
        item_id = ids.work_item_id(condition, await uow.monitoring.times_opened(condition))
        item = WorkItem.open(item_id, raised.kind, severity, raised.order_id, raised.ticket_id, raised.message, now,
                             ack_within(deps))
    else:
        item.repeat(severity, raised.message, now, ack_within(deps))
    await _save_item(uow, item, cause)
    return item.occurrences == 1


async def _save_item(uow: MonitoringUnitOfWork, item: WorkItem, cause: Envelope[Any] | None,
                     by: str | None = None) -> None:
    await uow.monitoring.save_item(item)
    for action in item.changes:
        uow.publish(m.WorkItemChanged(
            item_id=item.item_id, action=m.WorkItemAction(action), condition=item.condition[:200], kind=item.kind,
            severity=AlertSeverity(item.severity.value), owner=item.owner, state=m.WorkItemState(item.state.value),
            order_id=item.order_id, ticket_id=item.ticket_id, message=item.message[:500], opened_at=item.opened_at,
            occurrences=item.occurrences, escalations=item.escalations, ack_due_at=item.ack_due_at, by=by,
            note=item.note[:500]), key=item.order_id, cause=cause)
    item.changes.clear()


async def erp_acknowledged(envelope: Envelope[ErpOrderAcknowledged], uow: MonitoringUnitOfWork, deps: Deps) -> None:
    if envelope.payload.accepted:
        return
    order = await uow.monitoring.order(envelope.payload.order_id)
    await uow.monitoring.count(order.shop_id if order else ALL_SHOPS, day_of(deps, envelope.occurred_at),
                               figures.INTEGRATION_ERRORS, "ERP", "REFUSED")


async def dead_letter(envelope: Envelope[DeadLetter], uow: MonitoringUnitOfWork, deps: Deps) -> None:
    letter = envelope.payload
    day = day_of(deps, letter.failed_at)
    await uow.monitoring.count(ALL_SHOPS, day, figures.DEAD_LETTERS, letter.source_topic, letter.reason_code)
    system = DEAD_LETTER_SYSTEMS.get(letter.source_topic)
    if system is not None:
        await uow.monitoring.count(ALL_SHOPS, day, figures.INTEGRATION_ERRORS, system, letter.reason_code)


# ---------------------------------------------------------------- people's commands on work items
async def _item_of(uow: MonitoringUnitOfWork, item_id: uuid.UUID) -> WorkItem:
    item = await uow.monitoring.item(item_id)
    if item is None:
        raise errors.WorkItemUnknown("There is no such work item.")
    return item


async def acknowledge(envelope: Envelope[AcknowledgeWorkItem], uow: MonitoringUnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    await acknowledge_item(uow, cmd.item_id, cmd.requested_by, envelope.occurred_at, envelope)


async def resolve(envelope: Envelope[ResolveWorkItem], uow: MonitoringUnitOfWork, deps: Deps) -> None:
    cmd = envelope.payload
    await resolve_item(uow, cmd.item_id, cmd.requested_by, cmd.note, envelope.occurred_at, envelope)


async def acknowledge_item(uow: MonitoringUnitOfWork, item_id: uuid.UUID, by: str, now: datetime,
                           cause: Envelope[Any] | None = None) -> WorkItem:
    """Someone took the item (from the back office, or ``aftersales alerts ack``): it stops escalating."""
    item = await _item_of(uow, item_id)
    item.acknowledge(by, now)
    await _save_item(uow, item, cause, by=by)
    return item


async def resolve_item(uow: MonitoringUnitOfWork, item_id: uuid.UUID, by: str, note: str, now: datetime,
                       cause: Envelope[Any] | None = None) -> WorkItem:
    item = await _item_of(uow, item_id)
    item.resolve(by, note, now)
    await _save_item(uow, item, cause, by=by)
    return item


async def work_items(uow: MonitoringUnitOfWork, *, include_resolved: bool = False, owner: str | None = None,
                     limit: int = 100, order_id: str | None = None) -> list[WorkItem]:
    states = tuple(ItemState) if include_resolved else (ItemState.OPEN, ItemState.ACKNOWLEDGED)
    return await uow.monitoring.work_items(states, owner, limit, order_id)


# ---------------------------------------------------------------- periodic jobs
def escalate(deps: Deps) -> PeriodicJob[MonitoringUnitOfWork]:
    """Items nobody acknowledged in their severity's time go one step up, with a new alert."""
    async def due(uow: MonitoringUnitOfWork, skip: Quarantine) -> list[DueItem]:
        return await uow.monitoring.escalations_due(deps.clock(), skip)

    async def run(uow: MonitoringUnitOfWork, found: DueItem) -> bool:
        item = await uow.monitoring.item(uuid.UUID(found.id))
        now = deps.clock()
        if item is None or not item.escalate(now, ack_within(deps)):
            return False  # acknowledged meanwhile, or another replica escalated it
        await _save_item(uow, item, None)
        uow.publish(OpsAlert(kind=ESCALATED, severity=AlertSeverity(item.severity.value),
                             message=f"{item.kind} not acknowledged in time; now {item.severity.value} for "
                                     f"{item.owner}: {item.message}"[:500],
                             order_id=item.order_id, ticket_id=item.ticket_id), key=item.order_id)
        return True

    return periodic("work_item_escalation", due, run, deps.settings.monitoring_tick_seconds)


def publish_figures(deps: Deps) -> PeriodicJob[MonitoringUnitOfWork]:
    """Each shop's day whose figures changed goes out as it stands (one message a day and shop)."""
    async def due(uow: MonitoringUnitOfWork, skip: Quarantine) -> list[DueItem]:
        return [DueItem(f"{shop}|{day.isoformat()}", shop or "all-shops") for shop, day in
                await uow.monitoring.changed_days()]

    async def run(uow: MonitoringUnitOfWork, found: DueItem) -> bool:
        shop, text = found.id.split("|", 1)
        day = date.fromisoformat(text)
        if not await uow.monitoring.claim_changed_day(shop, day):
            return False
        fields = figures_of(await uow.monitoring.day_figures(shop, day))
        uow.publish(m.DailyFiguresChanged(shop_id=shop or "all-shops", day=day, **fields),
                    key=f"{shop or 'all-shops'}.{day.isoformat()}")
        return True

    return periodic("daily_figures", due, run, deps.settings.monitoring_tick_seconds)


def figures_of(rows: list[tuple[str, str, str, int]]) -> dict[str, Any]:
    """One day's counters as the fields of DailyFiguresChanged."""
    found = figures.of(rows)
    return {
        "units_sold": found.units_sold, "units_in_tickets": found.units_in_tickets,
        "tickets_opened": found.tickets_opened,
        "refunded": [Money(cents=cents, currency=currency) for currency, cents in sorted(found.refunded.items())],
        "refunds_completed": found.refunds_completed, "refunds_failed": found.refunds_failed,
        "refunds_retried": found.refunds_retried,
        "sla_breaches": [m.Count(key=state or "?", value=n) for state, n in sorted(found.sla_breaches.items())],
        "reasons": [m.Count(key=f"{kind}/{reason}"[:128], value=n)
                    for (kind, reason), n in sorted(found.reasons.items())],
        "integration_errors": [m.Count(key=f"{system}/{kind}"[:128], value=n)
                               for (system, kind), n in sorted(found.integration_errors.items())],
        "dead_letters": [m.Count(key=f"{topic}/{reason}"[:128], value=n)
                         for (topic, reason), n in sorted(found.dead_letters.items())]}


@dataclass(frozen=True)
class Stats:
    """A period's figures of one shop (or all), as ``aftersales stats`` prints them."""

    shop_id: str | None
    first_day: date
    last_day: date
    figures: Figures
    time_in_state: list[TimeInState]


async def stats(uow: MonitoringUnitOfWork, deps: Deps, shop_id: str | None, first_day: date,
                last_day: date) -> Stats:
    """The figures of ``first_day``..``last_day`` (reporting days, both included)."""
    zone = _zone(deps.settings.reporting_timezone)
    since = datetime.combine(first_day, time.min, zone)
    until = datetime.combine(last_day + timedelta(days=1), time.min, zone)
    counters = await uow.monitoring.counters_between(shop_id, first_day, last_day)
    return Stats(shop_id, first_day, last_day, figures.of(counters),
                 await uow.monitoring.time_in_states(shop_id, since, until))
