"""Monitoring's pure rules, property-tested: a work item's lifecycle whatever people, repeats and
the clock do (stateful), an order line's after-sales state whatever its tickets do, the
serial-returner thresholds, and the figures' arithmetic (rates, nearest-rank percentiles)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from services.domain import errors
from services.domain import figures as figures_of
from services.domain.line_state import Line as OrderLine
from services.domain.line_state import LineState
from services.domain.model import AfterSalesType
from services.domain.policy import Policy
from services.domain.serial_returner import serial_returner
from services.domain.work_queue import DEFAULT_ACK_WITHIN, MANAGERS, ItemState, Severity, WorkItem, owner_for

from .builders import T0

SEVERITIES = st.sampled_from(list(Severity))


class WorkItemLifecycle(RuleBasedStateMachine):
    """One condition's item: alerts repeat it, people acknowledge and resolve it, time passes and
    the escalation job runs. What must always hold: severity never goes down; an item is due for
    acknowledgement exactly while it is open and not with the managers; a resolved item stays
    resolved; each escalation is one step and recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.item = WorkItem.open(uuid.uuid4(), "REVIEW_SLA_BREACHED", Severity.INFO, "O1", "T1", "late", self.now,
                                  DEFAULT_ACK_WITHIN)
        self.highest = Severity.INFO.rank
        self.escalations = 0

    @rule(severity=SEVERITIES)
    def repeat(self, severity: Severity) -> None:
        if self.item.state is ItemState.RESOLVED:
            with pytest.raises(errors.WorkItemNotOpen):
                self.item.repeat(severity, "again", self.now, DEFAULT_ACK_WITHIN)
            return
        before = self.item.occurrences
        self.item.repeat(severity, "again", self.now, DEFAULT_ACK_WITHIN)
        assert self.item.occurrences == before + 1

    @rule(minutes=st.integers(0, 60 * 30))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def escalation_job(self) -> None:
        due = self.item.escalation_due(self.now)
        before = (self.item.severity, self.item.owner)
        escalated = self.item.escalate(self.now, DEFAULT_ACK_WITHIN)
        assert escalated == due
        if escalated:
            self.escalations += 1
            severity = before[0]
            if severity is Severity.CRITICAL:
                assert (self.item.severity, self.item.owner) == (Severity.CRITICAL, MANAGERS)
            else:
                assert self.item.severity.rank == severity.rank + 1

    @rule()
    def acknowledge(self) -> None:
        if self.item.state is not ItemState.OPEN:
            with pytest.raises(errors.WorkItemNotOpen):
                self.item.acknowledge("ops-1", self.now)
            return
        self.item.acknowledge("ops-1", self.now)
        assert self.item.acknowledged_by == "ops-1"

    @rule()
    def resolve(self) -> None:
        if self.item.state is ItemState.RESOLVED:
            with pytest.raises(errors.WorkItemNotOpen):
                self.item.resolve("ops-1", "done", self.now)
            return
        self.item.resolve("ops-1", "done", self.now)

    @invariant()
    def severity_never_goes_down(self) -> None:
        assert self.item.severity.rank >= self.highest
        self.highest = self.item.severity.rank

    @invariant()
    def only_an_open_item_not_with_the_managers_waits_for_acknowledgement(self) -> None:
        waits = self.item.state is ItemState.OPEN and self.item.owner != MANAGERS
        assert (self.item.ack_due_at is not None) == waits

    @invariant()
    def every_escalation_is_counted(self) -> None:
        assert self.item.escalations == self.escalations
        assert self.item.changes.count("ESCALATED") == self.escalations


TestWorkItemLifecycle = WorkItemLifecycle.TestCase
TestWorkItemLifecycle.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


def test_owners_follow_the_alert_kind() -> None:
    assert [owner_for(k) for k in ("REFUND_FAILED", "INTERCEPT_FAILED", "RECEIPT_OVERDUE", "DEAD_LETTERS_WAITING",
                                   "INFRASTRUCTURE_OUTAGE", "REVIEW_SLA_BREACHED", "ERP_SYNC_FAILED")] == [
        "finance", "warehouse", "warehouse", "admin", "admin", "ops", "ops"]


# ---------------------------------------------------------------- line state
TYPES = st.sampled_from(list(AfterSalesType))


@st.composite
def ticket_histories(draw: st.DrawFn) -> tuple[int, list[tuple[str, str, AfterSalesType, int, bool, int]]]:
    """A line's quantity and a sequence of (action, ticket, type, units, completed, cents), with
    redeliveries: the same opening or ending may come twice."""
    quantity = draw(st.integers(1, 6))
    steps: list[tuple[str, str, AfterSalesType, int, bool, int]] = []
    for n in range(draw(st.integers(0, 6))):
        ticket = f"T{n}"
        type_, units = draw(TYPES), draw(st.integers(1, quantity))
        steps.append(("open", ticket, type_, units, False, 0))
        if draw(st.booleans()):
            steps.append(("open", ticket, type_, units, False, 0))
        if draw(st.booleans()):
            end = ("end", ticket, type_, units, draw(st.booleans()), draw(st.integers(0, 10_000)))
            steps.extend([end] * draw(st.integers(1, 2)))
    return quantity, steps


@given(ticket_histories())
def test_a_line_shows_in_progress_while_any_ticket_is_open_and_counts_each_outcome_once(
        history: tuple[int, list[tuple[str, str, AfterSalesType, int, bool, int]]]) -> None:
    quantity, steps = history
    line = OrderLine("O1", 1, "SKU-1", quantity)
    open_tickets: set[str] = set()
    done: dict[str, tuple[AfterSalesType, int, bool, int]] = {}
    for action, ticket, type_, units, completed, cents in steps:
        if action == "open":
            line = line.opened(ticket, type_, units)
            if ticket not in done:
                open_tickets.add(ticket)
        else:
            line = line.ended(ticket, type_, units, completed=completed, refund_cents=cents)
            open_tickets.discard(ticket)
            done.setdefault(ticket, (type_, units, completed, cents))
    assert {p.ticket_id for p in line.in_progress} == open_tickets
    refunds = [(units, cents) for type_, units, completed, cents in done.values()
               if completed and type_ in (AfterSalesType.REFUND_ONLY, AfterSalesType.RETURN_AND_REFUND)]
    assert line.refunded_units == sum(units for units, _ in refunds)
    assert line.refunded_cents == sum(cents for _, cents in refunds)
    if open_tickets:
        assert (line.state, line.label) == (LineState.IN_PROGRESS, "售后中")
    elif refunds:
        assert line.state in (LineState.REFUNDED, LineState.PARTLY_REFUNDED)
        assert (line.state is LineState.REFUNDED) == (line.refunded_units >= quantity)
    elif not any(completed for _, _, completed, _ in done.values()):
        assert (line.state, line.label) == (LineState.NONE, "")


# ---------------------------------------------------------------- serial returner
@given(tickets=st.integers(0, 40), orders=st.integers(0, 40), max_tickets=st.integers(1, 10),
       max_rate=st.integers(1, 100), min_orders=st.integers(1, 10))
def test_a_buyer_is_flagged_exactly_when_a_threshold_is_passed_and_the_reason_names_it(
        tickets: int, orders: int, max_tickets: int, max_rate: int, min_orders: int) -> None:
    policy = Policy(serial_returner_max_tickets=max_tickets, serial_returner_max_rate_percent=max_rate,
                    serial_returner_min_orders=min_orders)
    by_count = tickets > max_tickets
    by_rate = orders >= min_orders and tickets * 100 > max_rate * orders
    flag = serial_returner(tickets, orders, policy)
    assert (flag is not None) == (by_count or by_rate)
    if flag is not None:
        assert (f"(more than {max_tickets})" in flag.reason) == by_count
        assert (f"(more than {max_rate}%)" in flag.reason) == by_rate
        assert (flag.tickets_in_window, flag.orders_in_window) == (tickets, orders)


def test_a_few_returns_on_many_orders_are_not_a_serial_returner() -> None:
    assert serial_returner(5, 40, Policy()) is None  # 5 is not more than 5, and 12 % is no high rate
    assert serial_returner(3, 4, Policy()) is not None  # 75 % of 4 orders


# ---------------------------------------------------------------- figures
@given(st.lists(st.floats(0, 1e7, allow_nan=False), min_size=1, max_size=50), st.sampled_from([0.5, 0.95]))
def test_a_percentile_is_a_value_one_ticket_really_spent_with_enough_at_or_below_it(
        values: list[float], fraction: float) -> None:
    chosen = figures_of.nearest_rank(values, fraction)
    assert chosen in values
    assert sum(v <= chosen for v in values) >= fraction * len(values)
    assert sum(v < chosen for v in values) < fraction * len(values)


@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_a_rate_in_per_mille_is_rounded_half_up(in_tickets: int, sold: int) -> None:
    shown = figures_of.Rate(in_tickets, sold).per_mille
    assert shown is not None
    assert abs(shown * sold - in_tickets * 1000) * 2 <= sold  # within half a per mille
    assert figures_of.Rate(in_tickets, 0).per_mille is None


def test_counters_sum_into_figures_per_sku_category_reason_and_currency() -> None:
    found = figures_of.of([
        ("units_sold", "A", "shoes", 3), ("units_sold", "A", "shoes", 2), ("units_sold", "B", "hats", 1),
        ("units_in_tickets", "A", "shoes", 1), ("tickets_opened", "REFUND_ONLY", "OTHER", 2),
        ("refunded", "CNY", "", 500), ("refunded", "USD", "", 7), ("refunded", "CNY", "", 100),
        ("sla_breaches", "PENDING_REVIEW", "REVIEW_SLA_BREACHED", 1), ("something_new", "x", "y", 9)])
    assert (found.units_sold, found.units_in_tickets, str(found.rate)) == (6, 1, "16.7%")
    assert {k: (r.in_tickets, r.sold) for k, r in found.by_sku.items()} == {"A": (1, 5), "B": (0, 1)}
    assert found.refunded == {"CNY": 600, "USD": 7}
    assert found.reasons_of("REFUND_ONLY") == {"OTHER": 2}
    assert found.sla_breaches == {"PENDING_REVIEW": 1}
