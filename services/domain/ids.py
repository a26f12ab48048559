"""Identities derived from what caused them, never drawn at random.

A rebuild from the Kafka log (``services.replay``) runs the recorded inputs through the same use
cases again: the recorded answers (the payment channel's result for a refund id, the WMS's
dispatch of a shipment id, a back-office decision on a ticket id) must find what they answer, so
every id those answers carry is a function of the input that made it. Redelivery was already
safe (the inbox); these make a second run of the whole log land on the same ids as the first.
"""

from __future__ import annotations

import uuid
from datetime import datetime

AFTERSALES = uuid.UUID("6f1c2b8e-4a55-5d1e-9c0a-3b7e2d9f4a10")  # this system's namespace for uuid5


def ticket_id(request_id: uuid.UUID) -> str:
    """One ticket per buyer request (the request id is the buyer's idempotency key)."""
    return str(uuid.uuid5(AFTERSALES, f"ticket/{request_id}"))


def ticket_no(ticket: str, applied_at: datetime) -> str:
    """The number people read (AS + day + ten digits), a function of the ticket id."""
    return f"AS{applied_at:%Y%m%d}{uuid.UUID(ticket).int % 10**10:010d}"


def refund_id(ticket: str) -> uuid.UUID:
    """One refund per ticket: a retry keeps it, so the channel's idempotency key never changes."""
    return uuid.uuid5(AFTERSALES, f"refund/{ticket}")


def compensation_id(ticket: str) -> uuid.UUID:
    return uuid.uuid5(AFTERSALES, f"compensation/{ticket}")


def erp_order_id(ticket: str, kind: str) -> uuid.UUID:
    """A ticket has at most one ERP order of each kind."""
    return uuid.uuid5(AFTERSALES, f"erp-order/{ticket}/{kind}")


def work_item_id(condition: str, opened_before: int) -> uuid.UUID:
    """A monitoring condition's n-th work item (an alert may come from a periodic job, whose own
    message ids are drawn at random)."""
    return uuid.uuid5(AFTERSALES, f"work-item/{condition}/{opened_before}")


def caused_by(cause_event_id: uuid.UUID, what: str) -> uuid.UUID:
    """An id made by handling one message (a shipment, an outgoing event): the same message
    handled again, in a rebuild, makes the same id."""
    return uuid.uuid5(cause_event_id, what)
