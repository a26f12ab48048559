"""Monitoring, settlement, marketing and dead-letter messages."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import AwareDatetime, Field

from .envelope import Contract, Id, Money, message


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


@message("OpsAlert")
class OpsAlert(Contract):
    kind: str = Field(max_length=64, description="e.g. REVIEW_SLA_BREACHED, REFUND_FAILED")
    severity: Severity
    message: str = Field(max_length=500)
    order_id: Id
    ticket_id: Id | None = None


@message("SettlementAdjusted")
class SettlementAdjusted(Contract):
    """The merchant's settlement is reduced by a completed refund."""

    ticket_id: Id
    order_id: Id
    shop_id: Id
    refund: Money
    settlement_before: Money
    settlement_after: Money


@message("ReturnCompensation")
class ReturnCompensation(Contract):
    """Coupon or virtual currency to give back, for the marketing/account system."""

    compensation_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    buyer_id: Id
    coupon: Money
    virtual_currency: Money


@message("CompensationAcknowledged")
class CompensationAcknowledged(Contract):
    compensation_id: uuid.UUID
    order_id: Id


@message("DeadLetter")
class DeadLetter(Contract):
    """A message that could not be processed, with why and where it came from."""

    source_topic: str
    partition: int
    offset: int
    consumer_group: str
    error_class: str
    reason: str = Field(max_length=2000)
    original_key: str | None = None
    original_value: str = Field(description="The original bytes, UTF-8 (lossy) or base64")
    original_encoding: str = "utf-8"
    attempts: int
    failed_at: AwareDatetime
