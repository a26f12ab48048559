"""Refund commands to the payment channel (原路退款) and its answers."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, Field

from .envelope import Contract, Id, Money, message


@message("ExecuteRefund")
class ExecuteRefund(Contract):
    """``refund_id`` is the channel's idempotency key: resending it never pays twice."""

    refund_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    amount: Money
    attempt: int = Field(ge=1)


def _signed_by() -> Any:
    return Field("", max_length=32, description="Id of the channel key that signed this result")


def _signature() -> Any:
    return Field("", max_length=128, description="HMAC-SHA256 (hex) by that key (contracts/signing.py)")


@message("RefundSucceeded")
class RefundSucceeded(Contract):
    """Signed by the channel: finance dead-letters a result whose signature does not verify."""

    refund_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    amount: Money
    channel_ref: str = Field(max_length=64)
    settled_at: AwareDatetime
    key_id: str = _signed_by()
    signature: str = _signature()


@message("RefundFailed")
class RefundFailed(Contract):
    """Signed by the channel, like RefundSucceeded."""

    refund_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    code: str = Field(max_length=64)
    message: str = Field(max_length=500)
    retryable: bool = True
    key_id: str = _signed_by()
    signature: str = _signature()
