"""Buyer requests, rejections and ticket events of the after-sales context."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from .envelope import OPEN_ENUM, Contract, Id, Money, UnknownMember, message

Text = Annotated[str, StringConstraints(max_length=500)]


class AfterSalesType(StrEnum):
    CANCEL = "CANCEL"
    REFUND_ONLY = "REFUND_ONLY"
    RETURN_AND_REFUND = "RETURN_AND_REFUND"
    EXCHANGE = "EXCHANGE"
    REPAIR = "REPAIR"


class TicketStatus(StrEnum):
    PENDING_REVIEW = "PENDING_REVIEW"
    PENDING_MANAGER = "PENDING_MANAGER"
    PENDING_REFUND = "PENDING_REFUND"
    REFUNDING = "REFUNDING"
    REFUND_FAILED = "REFUND_FAILED"
    AWAITING_RETURN = "AWAITING_RETURN"
    AWAITING_RECEIPT = "AWAITING_RECEIPT"
    INTERVENTION = "INTERVENTION"
    AWAITING_RESHIPMENT = "AWAITING_RESHIPMENT"
    IN_REPAIR = "IN_REPAIR"
    RESHIPPED = "RESHIPPED"
    SENDING_BACK = "SENDING_BACK"  # the ticket ended while the warehouse held the goods: they go back
    COMPLETED = "COMPLETED"
    CLOSED = "CLOSED"


class Role(StrEnum):
    BUYER = "buyer"
    OPS = "ops"
    FINANCE = "finance"
    MANAGER = "manager"
    WAREHOUSE = "warehouse"
    SYSTEM = "system"


class Actor(Contract):
    role: Role
    id: Id


class ExchangeVariant(Contract):
    """Another variant of the same product the buyer wants instead (seed 004, 选错型号: the wrong
    size or model was chosen), with its list price as the product catalogue gives it: the buyer
    front end offers only the product's own variants."""

    sku: Id
    unit_price: Money


class RequestedLine(Contract):
    line_no: int = Field(ge=1, le=1000)
    quantity: int = Field(ge=1, le=10_000)
    exchange_for: ExchangeVariant | None = Field(default=None, description="An exchange only: the variant to "
                                                 "ship instead of the same sku")


@message("RequestAfterSales")
class RequestAfterSales(Contract):
    """A buyer asks for after-sales on some units of an order; ``request_id`` makes it idempotent."""

    request_id: uuid.UUID
    order_id: Id
    buyer_id: Id
    type: AfterSalesType
    lines: list[RequestedLine] = Field(default_factory=list, max_length=200,
                                       description="Empty only for CANCEL (whole order)")
    reason_code: Id
    evidence: list[Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=list, max_length=9, description="Photo references")
    description: str = Field(default="", max_length=2000)
    requested_at: AwareDatetime | None = Field(
        default=None, description="When the buyer asked; the after-sales window is measured to it "
                                  "(never later than when intake received it)")


@message("QuoteAfterSales")
class QuoteAfterSales(Contract):
    """Before sending a request, the buyer asks what it would refund (seeds 002, 003); answered
    with an AfterSalesQuoted, or a RequestRejected saying why the request would be refused.
    Nothing is opened or held."""

    request_id: uuid.UUID = Field(description="Names this quote; the answer carries it")
    order_id: Id
    buyer_id: Id
    type: AfterSalesType
    lines: list[RequestedLine] = Field(default_factory=list, max_length=200,
                                       description="Empty only for CANCEL (whole order)")
    reason_code: Id | None = Field(None, description="If chosen already: it must be one the type offers")


class QuotedLine(Contract):
    line_no: int
    sku: Id
    quantity: int = Field(ge=1)
    list_price: Money = Field(description="Unit price × units, before any discount")
    refund: Money = Field(description="Back to the payment route")
    promotion: Money = Field(description="The shop's discount on these units: never paid, not refunded")
    coupon: Money = Field(description="The coupon's share: not refunded as money")
    virtual_currency: Money = Field(description="The virtual currency's share: not refunded as money")


@message("AfterSalesQuoted")
class AfterSalesQuoted(Contract):
    """What a request would refund, computed by the same rules that open the ticket."""

    request_id: uuid.UUID
    order_id: Id
    type: AfterSalesType
    lines: list[QuotedLine]
    shipping: Money = Field(description="Shipping refunded without a reviewer deciding")
    shipping_if_reviewer_agrees: Money = Field(description="Shipping a reviewer may add")
    total: Money = Field(description="Lines plus shipping: what the buyer would get back")
    not_refunded: Money = Field(description="Promotions, coupon and virtual currency on these units")
    virtual_currency_returned: bool = Field(
        False, description="The shop gives the virtual currency back with the refund (not as money)")
    quoted_at: AwareDatetime


@message("WithdrawTicket")
class WithdrawTicket(Contract):
    ticket_id: Id
    order_id: Id
    buyer_id: Id
    note: Text = ""


@message("RefuseDelivery")
class RefuseDelivery(Contract):
    """The buyer refused the parcel at the door (拒收, seed 003): the carrier takes it back to the
    warehouse, whose receipt of it counts as the return. ``carrier`` and ``waybill`` are the
    refused parcel's."""

    ticket_id: Id
    order_id: Id
    buyer_id: Id
    carrier: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    waybill: Annotated[str, StringConstraints(min_length=1, max_length=64)]


@message("SubmitReturnShipment")
class SubmitReturnShipment(Contract):
    """The buyer shipped the goods back: carrier and waybill."""

    ticket_id: Id
    order_id: Id
    buyer_id: Id
    carrier: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    waybill: Annotated[str, StringConstraints(min_length=1, max_length=64)]


@message("ConfirmExchangeReceived")
class ConfirmExchangeReceived(Contract):
    """The buyer received the exchanged or repaired goods."""

    ticket_id: Id
    order_id: Id
    buyer_id: Id


@message("RequestRejected")
class RequestRejected(Contract):
    """A buyer request that was refused; ``code`` is machine-readable, ``message`` buyer-readable."""

    order_id: Id
    request_type: str
    code: str
    message: str
    request_id: uuid.UUID | None = None
    ticket_id: Id | None = None
    rejected_event_id: uuid.UUID | None = None


@message("CommandRejected")
class CommandRejected(Contract):
    """A staff or system command that was refused and changed nothing."""

    order_id: Id
    command_type: str
    code: str
    message: str
    ticket_id: Id | None = None
    actor: Actor | None = None
    rejected_event_id: uuid.UUID | None = None


class TicketLineView(Contract):
    line_no: int
    sku: Id
    quantity: int
    cap: Money = Field(description="Most that may be refunded for these units")
    refund: Money = Field(description="Amount to refund (cap, or lowered by the reviewer)")
    exchange_sku: Id | None = Field(default=None, description="An exchange to another variant: the sku shipped "
                                    "instead of ``sku`` (which comes back)")


OpenTicketStatus = Annotated[TicketStatus | UnknownMember, OPEN_ENUM]
"""Open: every consumer acts on a few statuses only, so a new status must not send its messages to the DLQ."""


class ReturnAddress(Contract):
    """Where the buyer sends goods back (seeds 000, 003): the shop's return desk and its contact,
    with packaging requirements. The shop's address, not the buyer's: it may be told to the buyer."""

    recipient: str = Field(min_length=1, max_length=64)
    phone: str = Field(min_length=1, max_length=32)
    address: str = Field(min_length=1, max_length=300)
    instructions: str = Field("", max_length=500, description="Packaging and labelling requirements")


class TicketView(Contract):
    """The state of a ticket after a change, so consumers need no lookup."""

    ticket_id: Id
    ticket_no: str
    order_id: Id
    shop_id: Id
    buyer_id: Id
    type: AfterSalesType
    status: OpenTicketStatus
    lines: list[TicketLineView]
    refund_total: Money
    shipping_refund: Money = Money(cents=0)
    refund_coupon: bool = False
    refund_virtual_currency: bool = False
    refund_shipping: bool = False
    before_shipment: bool = False
    reason_code: str = ""
    return_carrier: str | None = None
    return_waybill: str | None = None
    return_address: ReturnAddress | None = Field(None, description="Given at approval of a return or exchange")
    reissue: bool = Field(False, description="Ops chose to send the units again (补发) instead of a refund")
    delivery_refused: bool = Field(False, description="The buyer refused the parcel (拒收): its return is the receipt")
    applied_at: AwareDatetime
    deadline_at: AwareDatetime | None = None


@message("TicketOpened")
class TicketOpened(Contract):
    request_id: uuid.UUID
    ticket: TicketView


@message("TicketStatusChanged")
class TicketStatusChanged(Contract):
    """Every transition of a ticket, with who did it and why (the audit entry, as an event)."""

    ticket: TicketView
    from_status: OpenTicketStatus
    to_status: OpenTicketStatus
    actor: Actor
    reason: str = ""
    amount_before: Money | None = None
    amount_after: Money | None = None
    action: str = Field("", max_length=64, description="What was done (approve, inspection, repair_progress, …)")

    def enters(self, status: TicketStatus) -> bool:
        """Whether this transition moved the ticket into ``status``: a change within a status (an
        amount lowered in PENDING_REVIEW, a repair's progress) enters nothing."""
        return self.to_status == status and self.from_status != status
