"""Refund commands to the payment channel (原路退款) and its answers."""

from __future__ import annotations

import uuid

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


@message("RefundSucceeded")
class RefundSucceeded(Contract):
    refund_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    amount: Money
    channel_ref: str = Field(max_length=64)
    settled_at: AwareDatetime


@message("RefundFailed")
class RefundFailed(Contract):
    refund_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    code: str = Field(max_length=64)
    message: str = Field(max_length=500)
    retryable: bool = True
