"""Alerts as work items: who owns one, when it must be acknowledged, and how it escalates.

An alert is a one-off message; a work item is the piece of work behind it. The same condition
(an alert kind on one ticket, or on one order when there is no ticket) keeps one item while it
is not resolved: a repeat adds an occurrence (and may raise the severity) rather than a second
item nobody would know is a duplicate. An item nobody acknowledged within its severity's time
escalates one step: WARNING → CRITICAL, INFO → WARNING; a CRITICAL goes to the managers. A
manager's item does not escalate further: there is no one above to page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from . import errors


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
_NEXT = {Severity.INFO: Severity.WARNING, Severity.WARNING: Severity.CRITICAL}


class ItemState(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


MANAGERS = "manager"

# Who acts on an alert, by its kind (the first matching rule wins; ops is everyone else's).
_OWNERS: tuple[tuple[str, str], ...] = (
    ("REFUND_", "finance"), ("SIGNATURE_INVALID", "finance"),
    ("INTERCEPT_", "warehouse"), ("INSPECTION_", "warehouse"), ("UNEXPECTED_RECEIPT", "warehouse"),
    ("RECEIPT_OVERDUE", "warehouse"),
    ("INFRASTRUCTURE_", "admin"), ("EVENT_ID_REUSED", "admin"), ("PERIODIC_ITEM_", "admin"),
    ("DEAD_LETTER", "admin"), ("ERP_", "ops"),
)

DEFAULT_ACK_WITHIN = {Severity.CRITICAL: timedelta(minutes=15), Severity.WARNING: timedelta(hours=4),
                      Severity.INFO: timedelta(hours=24)}


def owner_for(kind: str) -> str:
    for prefix, owner in _OWNERS:
        if kind.startswith(prefix):
            return owner
    return "ops"


def condition_of(kind: str, order_id: str, ticket_id: str | None) -> str:
    return f"{kind}:{ticket_id}" if ticket_id else f"{kind}:order:{order_id}"


@dataclass
class WorkItem:
    item_id: uuid.UUID
    condition: str
    kind: str
    severity: Severity
    owner: str
    order_id: str
    ticket_id: str | None
    message: str
    opened_at: datetime
    last_seen_at: datetime
    ack_due_at: datetime | None
    state: ItemState = ItemState.OPEN
    occurrences: int = 1
    escalations: int = 0
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    note: str = ""
    changes: list[str] = field(default_factory=list)  # actions since loaded, for the events

    @classmethod
    def open(cls, item_id: uuid.UUID, kind: str, severity: Severity, order_id: str, ticket_id: str | None,
             message: str, now: datetime, ack_within: dict[Severity, timedelta]) -> WorkItem:
        item = cls(item_id=item_id, condition=condition_of(kind, order_id, ticket_id), kind=kind,
                   severity=severity, owner=owner_for(kind), order_id=order_id, ticket_id=ticket_id,
                   message=message, opened_at=now, last_seen_at=now, ack_due_at=now + ack_within[severity])
        item.changes.append("OPENED")
        return item

    @property
    def active(self) -> bool:
        return self.state is not ItemState.RESOLVED

    def repeat(self, severity: Severity, message: str, now: datetime,
               ack_within: dict[Severity, timedelta]) -> None:
        """The same condition alerted again: one more occurrence; a higher severity raises the
        item's, and an open item's acknowledgement is then due as soon as the new severity asks."""
        if not self.active:
            raise errors.WorkItemNotOpen("a resolved item does not take repeats: the alert opens a new item")
        self.occurrences += 1
        self.last_seen_at = now
        self.message = message
        if severity.rank > self.severity.rank:
            self.severity = severity
            if self.state is ItemState.OPEN and self.ack_due_at is not None:
                self.ack_due_at = min(self.ack_due_at, now + ack_within[severity])
        self.changes.append("REPEATED")

    def acknowledge(self, by: str, now: datetime) -> None:
        if self.state is not ItemState.OPEN:
            raise errors.WorkItemNotOpen(f"This item is {self.state.value.lower()} already.")
        self.state, self.acknowledged_at, self.acknowledged_by, self.ack_due_at = ItemState.ACKNOWLEDGED, now, by, None
        self.changes.append("ACKNOWLEDGED")

    def resolve(self, by: str, note: str, now: datetime) -> None:
        if self.state is ItemState.RESOLVED:
            raise errors.WorkItemNotOpen("This item is resolved already.")
        self.state, self.resolved_at, self.resolved_by, self.note, self.ack_due_at = (
            ItemState.RESOLVED, now, by, note, None)
        self.changes.append("RESOLVED")

    def escalation_due(self, now: datetime) -> bool:
        return self.state is ItemState.OPEN and self.ack_due_at is not None and self.ack_due_at <= now

    def escalate(self, now: datetime, ack_within: dict[Severity, timedelta]) -> bool:
        """One step up if nobody acknowledged in time; False if it is not due (or cannot go higher)."""
        if not self.escalation_due(now):
            return False
        if self.severity in _NEXT:
            self.severity = _NEXT[self.severity]
            self.ack_due_at = now + ack_within[self.severity]
        else:  # a CRITICAL nobody took: the managers own it now, and it stops there
            self.owner = MANAGERS
            self.ack_due_at = None
        self.escalations += 1
        self.changes.append("ESCALATED")
        return True
