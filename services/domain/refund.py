"""The refund: one per money decision, its id the payment channel's idempotency key.

Its lifecycle: PENDING (asked, or about to be asked) → SUCCEEDED, or → FAILED after the last
attempt or a final refusal. Finance may start a FAILED refund again (a retry decision): same
id, fresh attempts, so the channel can never pay one decision twice. A success arriving after
the refund was given up still counts (the money did move): ``succeed`` says it was late, and
finance reserves the amounts again before confirming them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from . import ids
from .errors import LifecycleViolation

Backoff = Callable[[int], timedelta]
"""attempt number → how long to wait for an answer before that attempt counts as unanswered"""


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class RefundLine:
    line_no: int
    cents: int
    units: int


@dataclass
class Refund:
    refund_id: uuid.UUID
    ticket_id: str
    order_id: str
    lines: tuple[RefundLine, ...]
    shipping_cents: int
    status: RefundStatus = RefundStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    channel_ref: str | None = None
    completed_at: datetime | None = None

    @classmethod
    def new(cls, ticket_id: str, order_id: str, amounts: dict[int, tuple[int, int]], shipping_cents: int) -> Refund:
        return cls(ids.refund_id(ticket_id), ticket_id, order_id, _lines(amounts), shipping_cents)

    @property
    def goods_cents(self) -> int:
        return sum(ln.cents for ln in self.lines)

    @property
    def amount_cents(self) -> int:
        return self.goods_cents + self.shipping_cents

    @property
    def moves_units(self) -> bool:
        """False for a compensation (折价补偿): money back while the goods stay with the buyer."""
        return any(ln.units for ln in self.lines)

    @property
    def amounts(self) -> dict[int, tuple[int, int]]:
        """line_no → (cents, units), the shape the ledger reserves."""
        return {ln.line_no: (ln.cents, ln.units) for ln in self.lines}

    @property
    def in_flight_or_done(self) -> bool:
        return self.status in (RefundStatus.PENDING, RefundStatus.SUCCEEDED)

    def restart(self, amounts: dict[int, tuple[int, int]], shipping_cents: int) -> None:
        """Finance retried a failed refund: the same id, the ticket's current amounts, new attempts."""
        self._require(RefundStatus.FAILED, "restart")
        self.status, self.lines, self.shipping_cents = RefundStatus.PENDING, _lines(amounts), shipping_cents
        self.attempts, self.last_error, self.next_attempt_at = 0, "", None

    def complete_without_payment(self, now: datetime) -> None:
        """Nothing to pay (every amount adjusted to zero): done without asking the channel."""
        self._require(RefundStatus.PENDING, "complete without payment")
        if self.amount_cents != 0:
            raise LifecycleViolation(f"refund {self.refund_id} has {self.amount_cents} cents to pay")
        self.status, self.completed_at, self.next_attempt_at = RefundStatus.SUCCEEDED, now, None

    def sent(self, now: datetime, backoff: Backoff) -> None:
        """One more request to the channel; it counts as unanswered after the backoff."""
        self._require(RefundStatus.PENDING, "send")
        self.attempts += 1
        self.next_attempt_at = now + backoff(self.attempts)

    def postpone(self, now: datetime, backoff: Backoff) -> None:
        """The last request never reached Kafka: wait again without counting an attempt."""
        self._require(RefundStatus.PENDING, "postpone")
        self.next_attempt_at = now + backoff(self.attempts)

    def is_due(self, now: datetime) -> bool:
        return (self.status == RefundStatus.PENDING and self.next_attempt_at is not None
                and self.next_attempt_at <= now)

    def exhausted(self, max_attempts: int) -> bool:
        return self.attempts >= max_attempts

    def succeed(self, channel_ref: str, now: datetime) -> bool:
        """Records the channel's success; returns True if it came after the refund was given up."""
        if self.status == RefundStatus.SUCCEEDED:
            raise LifecycleViolation(f"refund {self.refund_id} succeeded twice")
        late = self.status == RefundStatus.FAILED
        self.status, self.channel_ref, self.completed_at = RefundStatus.SUCCEEDED, channel_ref, now
        self.next_attempt_at = None
        return late

    def refused(self, error: str, *, retryable: bool, max_attempts: int, now: datetime, backoff: Backoff) -> bool:
        """The channel said no. Returns True when finance must give up (final, or no attempts left);
        otherwise the next attempt is scheduled sooner than the silent-timeout one."""
        self._require(RefundStatus.PENDING, "record a refusal")
        self.last_error = error[:500]
        if retryable and not self.exhausted(max_attempts):
            self.next_attempt_at = now + backoff(self.attempts)
            return False
        return True

    def give_up(self, fallback: str = "no answer from the payment channel") -> None:
        """No more attempts; the last refusal stays the reason, else ``fallback``."""
        self._require(RefundStatus.PENDING, "give up")
        self.status, self.next_attempt_at = RefundStatus.FAILED, None
        self.last_error = (self.last_error or fallback)[:500]

    def _require(self, status: RefundStatus, move: str) -> None:
        if self.status != status:
            raise LifecycleViolation(f"cannot {move} refund {self.refund_id}: it is {self.status.value}")


def _lines(amounts: dict[int, tuple[int, int]]) -> tuple[RefundLine, ...]:
    return tuple(RefundLine(n, cents, units) for n, (cents, units) in sorted(amounts.items()))


@dataclass
class Compensation:
    """Coupon and virtual currency to give back for a refunded ticket (not cash: marketing returns
    them); open until marketing acknowledges it."""

    compensation_id: uuid.UUID
    ticket_id: str
    order_id: str
    coupon_cents: int
    virtual_currency_cents: int
    acknowledged_at: datetime | None = None

    def acknowledge(self, at: datetime) -> None:
        self.acknowledged_at = self.acknowledged_at or at
