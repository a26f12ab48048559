"""An order sent to a merchant's ERP (a return receipt or an exchange shipment) and its lifecycle.

SENT (waiting for the acknowledgement; resent with the same id when none comes in time) →
ACKNOWLEDGED, or → FAILED after the last attempt (ops is alerted and may start it again by
hand: SENT, fresh attempts, same id). A refusal by the ERP does not end it: it is resent sooner.

The order follows its ticket: when the ticket is withdrawn, rejected or closed, an order not yet
cancelled goes to CANCELLING (a cancel sent, resent the same way until the ERP confirms) →
CANCELLED, or → CANCEL_FAILED after the last attempt (alerted; ops may start the cancel again).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from . import ids
from .errors import LifecycleViolation
from .refund import Backoff


class ErpOrderKind(StrEnum):
    RETURN_RECEIPT = "RETURN_RECEIPT"
    EXCHANGE_SHIPMENT = "EXCHANGE_SHIPMENT"
    REISSUE_SHIPMENT = "REISSUE_SHIPMENT"


class ErpOrderStatus(StrEnum):
    SENT = "SENT"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    CANCEL_FAILED = "CANCEL_FAILED"


_RETRYING = (ErpOrderStatus.SENT, ErpOrderStatus.CANCELLING)
_ACKNOWLEDGEABLE = (ErpOrderStatus.SENT, ErpOrderStatus.FAILED)  # the order itself, not cancelled


@dataclass(frozen=True)
class SkuQuantity:
    sku: str
    quantity: int


@dataclass
class ErpOrder:
    erp_order_id: uuid.UUID
    shop_id: str
    ticket_id: str
    ticket_no: str
    order_id: str
    kind: ErpOrderKind
    lines: tuple[SkuQuantity, ...]
    status: ErpOrderStatus = ErpOrderStatus.SENT
    attempts: int = 1
    next_attempt_at: datetime | None = None
    last_error: str = ""
    erp_ref: str | None = None
    acknowledged_at: datetime | None = None

    @classmethod
    def first_sent(cls, *, shop_id: str, ticket_id: str, ticket_no: str, order_id: str, kind: ErpOrderKind,
                   lines: tuple[SkuQuantity, ...], now: datetime, backoff: Backoff) -> ErpOrder:
        return cls(ids.erp_order_id(ticket_id, kind.value), shop_id, ticket_id, ticket_no, order_id, kind, lines,
                   next_attempt_at=now + backoff(1))

    @property
    def cancelling(self) -> bool:
        return self.status in (ErpOrderStatus.CANCELLING, ErpOrderStatus.CANCEL_FAILED)

    def cancel(self, now: datetime, backoff: Backoff) -> bool:
        """Its ticket ended without it: ask the ERP to cancel (fresh attempts, same id); False if
        already asked or done."""
        if self.cancelling or self.status == ErpOrderStatus.CANCELLED:
            return False
        self.status, self.attempts, self.last_error = ErpOrderStatus.CANCELLING, 1, ""
        self.next_attempt_at = now + backoff(1)
        return True

    def cancelled(self) -> bool:
        """The ERP confirmed the cancel; False for a duplicate confirmation."""
        if self.status == ErpOrderStatus.CANCELLED:
            return False
        self.status, self.next_attempt_at = ErpOrderStatus.CANCELLED, None
        return True

    def acknowledge(self, erp_ref: str | None, at: datetime) -> bool:
        """The ERP accepted it; False if it already had (a duplicate or late acknowledgement, or
        the order is being cancelled)."""
        if self.status not in _ACKNOWLEDGEABLE:
            return False
        self.status, self.erp_ref, self.acknowledged_at, self.next_attempt_at = (
            ErpOrderStatus.ACKNOWLEDGED, erp_ref, at, None)
        return True

    def refused(self, error: str, now: datetime, backoff: Backoff) -> None:
        """The ERP said no: kept, and resent sooner than the silent-timeout schedule."""
        if self.status not in _ACKNOWLEDGEABLE:
            return  # acknowledged meanwhile, or being cancelled: the refusal is moot
        self.last_error = error[:500] or "rejected by the ERP"
        if self.status == ErpOrderStatus.SENT:
            self.next_attempt_at = now + backoff(self.attempts)

    def is_due(self, now: datetime) -> bool:
        return self.status in _RETRYING and self.next_attempt_at is not None and self.next_attempt_at <= now

    def exhausted(self, max_attempts: int) -> bool:
        return self.attempts >= max_attempts

    def postpone(self, now: datetime, backoff: Backoff) -> None:
        """The last request never reached Kafka: wait again without counting an attempt."""
        self._require(_RETRYING, "postpone")
        self.next_attempt_at = now + backoff(self.attempts)

    def resent(self, now: datetime, backoff: Backoff) -> None:
        self._require(_RETRYING, "resend")
        self.attempts += 1
        self.next_attempt_at = now + backoff(self.attempts)

    def give_up(self) -> None:
        self._require(_RETRYING, "give up")
        failed = ErpOrderStatus.CANCEL_FAILED if self.status == ErpOrderStatus.CANCELLING else ErpOrderStatus.FAILED
        self.status, self.next_attempt_at = failed, None

    def restart(self, now: datetime, backoff: Backoff) -> None:
        """Ops resends a failed order (or its failed cancel) by hand: fresh attempts, same id."""
        self._require((ErpOrderStatus.FAILED, ErpOrderStatus.CANCEL_FAILED), "restart")
        again = ErpOrderStatus.CANCELLING if self.status == ErpOrderStatus.CANCEL_FAILED else ErpOrderStatus.SENT
        self.status, self.attempts, self.last_error = again, 1, ""
        self.next_attempt_at = now + backoff(1)

    def _require(self, status: ErpOrderStatus | tuple[ErpOrderStatus, ...], move: str) -> None:
        if self.status not in (status if isinstance(status, tuple) else (status,)):
            raise LifecycleViolation(f"cannot {move} ERP order {self.erp_order_id}: it is {self.status.value}")
