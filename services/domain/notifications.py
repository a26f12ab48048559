"""Which ticket changes the buyer is told about, with which template and values, and when a buyer
deadline deserves a reminder (seed 000: tell the customer the process and what to do; seed 003:
the buyer sees the rejection reason).

The buyer hears about what changes for them: the request received, approved (and, for a return,
the deadline to send the goods), refused with the reviewer's reason, the parcel received and
checked, the money sent back (amount, to the original payment route), the replacement or repaired
item on its way, the end of an exchange or repair, goods going back to them, and the ticket closed
and why. Internal steps (a manager's approval, finance sending a ticket back to ops, a refund
retried) are not the buyer's business and say nothing. A reminder goes out once per deadline,
``Policy.buyer_reminder_before`` ahead of a deadline the buyer must act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .model import MONEY_TYPES, AfterSalesType, TicketStatus

# statuses whose deadline the buyer must meet, and the reminder each gets
BUYER_DEADLINES = {TicketStatus.AWAITING_RETURN: "RETURN_DEADLINE_REMINDER",
                   TicketStatus.RESHIPPED: "CONFIRM_RECEIPT_REMINDER"}
_REVIEWING = {TicketStatus.PENDING_REVIEW, TicketStatus.PENDING_MANAGER}
_APPROVED_TO = {TicketStatus.PENDING_REFUND, TicketStatus.REFUNDING, TicketStatus.AWAITING_RESHIPMENT,
                TicketStatus.IN_REPAIR}
_CHECKED_TO = {TicketStatus.PENDING_REFUND, TicketStatus.REFUNDING, TicketStatus.AWAITING_RESHIPMENT,
               TicketStatus.IN_REPAIR, TicketStatus.INTERVENTION}
PEOPLE_WHO_REFUSE = {"ops", "manager"}


@dataclass(frozen=True)
class Move:
    """A ticket's transition as the buyer's messages need it."""

    type: AfterSalesType
    from_status: str
    to_status: str
    actor_role: str
    reason: str
    refund_cents: int  # lines and shipping, what went back to the payment route
    currency: str
    deadline_at: datetime | None
    return_address: dict[str, str] | None = None  # the shop's return desk (recipient, phone, address, …)
    action: str = ""  # what was done (TicketStatusChanged.action): tells a repair's progress from a move


@dataclass(frozen=True)
class Notice:
    template: str
    params: dict[str, str]


def money(cents: int, currency: str) -> str:
    return f"{cents // 100}.{cents % 100:02d} {currency}"


def opened(ticket_type: AfterSalesType, refund_cents: int, currency: str) -> Notice:
    params = {"type": ticket_type.value}
    if ticket_type in MONEY_TYPES:
        params["refund"] = money(refund_cents, currency)
    return Notice("OPENED", params)


def on_move(move: Move) -> Notice | None:
    """What the buyer is told of a transition, or None when it is not theirs to know."""
    before, after = move.from_status, move.to_status
    if move.action in ("refund_instead_of_repair", "exchange_instead_of_repair"):
        return Notice("APPROVED", {"type": move.type.value, "instead_of": "REPAIR"})
    if move.action == "delivery_refused":
        return Notice("DELIVERY_REFUSED", {**_deadline(move)})
    if move.action == "reissue":
        return Notice("REISSUE_APPROVED", {"note": move.reason[:200]})
    if after == TicketStatus.AWAITING_RETURN and before in _REVIEWING:
        return Notice("RETURN_APPROVED", {**_deadline(move), **{f"return_{key}": value for key, value in
                                                                 (move.return_address or {}).items() if value}})
    if before in _REVIEWING and after in _APPROVED_TO and before != TicketStatus.PENDING_MANAGER:
        return Notice("APPROVED", {"type": move.type.value})
    if before == TicketStatus.PENDING_MANAGER and after in _APPROVED_TO:
        return None  # the buyer was told when ops approved; the manager's step is internal
    if move.action == "repair_progress":
        step, _, note = move.reason.partition(": ")
        return Notice("REPAIR_PROGRESS", {"step": step, "note": note[:200]})
    if before == TicketStatus.AWAITING_RECEIPT and after in _CHECKED_TO:
        return Notice("GOODS_RECEIVED", {})
    if after == TicketStatus.COMPLETED and move.type in MONEY_TYPES and move.refund_cents:
        return Notice("REFUNDED", {"amount": money(move.refund_cents, move.currency),
                                   "route": "ORIGINAL_PAYMENT"})
    if after == TicketStatus.RESHIPPED:
        return Notice("RESHIPPED", {**_deadline(move), "note": move.reason[:200]})
    if after == TicketStatus.COMPLETED:
        return Notice("COMPLETED", {"type": move.type.value})
    if after == TicketStatus.SENDING_BACK:
        return Notice("GOODS_SENT_BACK", {"reason": move.reason[:300]})
    if after == TicketStatus.CLOSED:
        if before in _REVIEWING and move.actor_role in PEOPLE_WHO_REFUSE:
            return Notice("REJECTED", {"reason": move.reason[:300]})
        return Notice("CLOSED", {"reason": move.reason[:300], "by": move.actor_role})
    return None


def _deadline(move: Move) -> dict[str, str]:
    return {} if move.deadline_at is None else {"deadline": move.deadline_at.isoformat()}


def remind_at(deadline_at: datetime, before: timedelta) -> datetime:
    """When the buyer is reminded of a deadline (``Policy.buyer_reminder_before`` ahead of it)."""
    return deadline_at - before


def reminder_due(status: str, deadline_at: datetime, reminder_at: datetime, reminded: bool,
                 now: datetime) -> str | None:
    """The reminder template when the buyer's deadline is near and they were not reminded yet."""
    template = BUYER_DEADLINES.get(TicketStatus(status)) if status in TicketStatus.__members__ else None
    if template is None or reminded:
        return None
    return template if reminder_at <= now < deadline_at else None
