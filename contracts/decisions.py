"""Commands from ops, finance and managers (the back office) to the review worker."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .aftersales import Actor, ReturnAddress
from .envelope import Contract, Id, message


class Decision(Contract):
    ticket_id: Id
    order_id: Id
    actor: Actor


@message("ApproveTicket")
class ApproveTicket(Decision):
    """Ops approves (同意). For a return or exchange the buyer is told where to send the goods:
    ``return_address``, or the shop's default (AFTERSALES_RETURN_ADDRESSES) when it is left out."""

    note: str = Field(default="", max_length=500)
    return_address: ReturnAddress | None = None


@message("RejectTicket")
class RejectTicket(Decision):
    """Ops rejects (拒绝); the reason is shown to the buyer."""

    reason: str = Field(min_length=1, max_length=500)


class LineAmount(Contract):
    """A proposed amount; its sign and cap are business rules, refused with a reason by review."""

    line_no: int = Field(ge=1)
    refund_cents: int = Field(ge=-(10**12), le=10**12, strict=True)


@message("AdjustRefundAmount")
class AdjustRefundAmount(Decision):
    """Ops lowers the refund (service or restocking fee agreed with the buyer); never above the cap."""

    lines: list[LineAmount] = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)


@message("SetRefundFlags")
class SetRefundFlags(Decision):
    refund_coupon: bool = False
    refund_virtual_currency: bool = False
    refund_shipping: bool = False


class InterventionOutcome(StrEnum):
    NEGOTIATED = "NEGOTIATED"
    SEND_BACK = "SEND_BACK"
    # an item the service centre cannot repair (seed 000): a refund of what it is worth, or a
    # replacement, instead; the goods are already in the warehouse
    REFUND_INSTEAD = "REFUND_INSTEAD"
    EXCHANGE_INSTEAD = "EXCHANGE_INSTEAD"


@message("ResolveIntervention")
class ResolveIntervention(Decision):
    outcome: InterventionOutcome
    lines: list[LineAmount] = Field(default_factory=list, max_length=200,
                                    description="Negotiated amounts, for NEGOTIATED")
    note: str = Field(min_length=1, max_length=500)


@message("ReissueMissingUnits")
class ReissueMissingUnits(Decision):
    """Ops sends the ticket's units again (补发: they were missing from the parcel) instead of
    refunding them; nothing is refunded, the buyer confirms the new parcel as for an exchange."""

    note: str = Field(min_length=1, max_length=500, description="What was missing; shown on the timeline")


@message("ApproveRefund")
class ApproveRefund(Decision):
    """Finance approves the amount (财务审核)."""

    note: str = Field(default="", max_length=500)


@message("SendBackRefund")
class SendBackRefund(Decision):
    """Finance sends the ticket back to ops review (打回)."""

    reason: str = Field(min_length=1, max_length=500)


@message("ApproveLargeRefund")
class ApproveLargeRefund(Decision):
    """A manager approves an amount at or above the large-amount threshold."""

    note: str = Field(default="", max_length=500)


@message("RetryRefund")
class RetryRefund(Decision):
    """Finance retries a refund that failed at the payment channel."""
