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


class SettlementKind(StrEnum):
    REFUND = "REFUND"  # goods back or stopped, their money refunded
    COMPENSATION = "COMPENSATION"  # money back while the goods stay with the buyer (折价补偿)


@message("SettlementAdjusted")
class SettlementAdjusted(Contract):
    """The merchant's settlement is reduced by a completed refund: the refund itself, the same
    part of the platform's subsidy taken back and of its fee given back: the settlement changes
    by ``fee_given_back - refund - subsidy_taken_back``."""

    ticket_id: Id
    order_id: Id
    shop_id: Id
    refund: Money
    settlement_before: Money
    settlement_after: Money
    subsidy_taken_back: Money = Money(cents=0)
    fee_given_back: Money = Money(cents=0)
    kind: SettlementKind = SettlementKind.REFUND


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
    """A message that could not be processed, with why and where it came from.

    Whatever the original was (any key bytes, any size), the dead letter fits: an original longer
    than the cut is kept only in part (``original_truncated``) with its full size and SHA-256, and
    the whole of it stays readable at ``source_topic``/``partition``/``offset`` while the topic's
    retention lasts (the replay tool reads it from there and checks the hash)."""

    source_topic: str
    partition: int
    offset: int
    consumer_group: str
    error_class: str
    reason: str = Field(max_length=2000, description="Built from error classes and field names, never values")
    original_key: str | None = None
    original_value: str = Field(description="The original bytes, UTF-8 or base64 (see original_encoding)")
    original_encoding: str = "utf-8"
    attempts: int
    failed_at: AwareDatetime
    reason_code: str = Field("UNCLASSIFIED", max_length=64,
                             description="Machine code: MALFORMED_JSON, SCHEMA_VIOLATION, FOREIGN_TYPE, "
                                         "PRODUCER_NOT_ALLOWED, EVENT_ID_REUSED, UNKNOWN_TICKET, DATA_ERROR, …")
    original_key_encoding: str = Field("utf-8", description="utf-8 or base64 (a key that is not UTF-8)")
    original_size: int = Field(0, ge=0, description="Size of the original value in bytes")
    original_sha256: str = Field("", description="Hex SHA-256 of the whole original value")
    original_truncated: bool = False
    original_event_id: uuid.UUID | None = Field(None, description="The original's event id, when it had one")
    original_type: str | None = Field(None, max_length=64)


class DeadLetterCount(Contract):
    source_topic: str
    reason_code: str
    count: int = Field(ge=1)


@message("DeadLetterSummary")
class DeadLetterSummary(Contract):
    """Dead letters recorded since the previous summary, counted per source topic and reason code."""

    since: AwareDatetime
    until: AwareDatetime
    counts: list[DeadLetterCount]
    total: int = Field(ge=0)
