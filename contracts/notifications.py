"""What the buyer is told (seed 000: tell the customer the process and what to do; seed 003: the
rejection reason is shown to the buyer). One message per buyer-visible change of a ticket, for the
buyer front end and the messaging service, which render ``template`` in the buyer's language.
``params`` carry what the text needs (amounts, deadlines, reasons, waybills), never an address or
phone number: those stay with the platform, which knows the buyer."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from .envelope import OPEN_ENUM, Contract, Id, UnknownMember, message


class NotificationTemplate(StrEnum):
    OPENED = "OPENED"  # we received your request; what happens next
    APPROVED = "APPROVED"  # approved; the refund is on its way
    RETURN_APPROVED = "RETURN_APPROVED"  # approved; send the goods back by the deadline
    REJECTED = "REJECTED"  # refused, with the reviewer's reason
    GOODS_RECEIVED = "GOODS_RECEIVED"  # the warehouse received and checked your parcel
    REFUNDED = "REFUNDED"  # amount and route (back to the original payment)
    RESHIPPED = "RESHIPPED"  # the replacement or repaired item is on its way
    COMPLETED = "COMPLETED"  # exchange or repair done
    GOODS_SENT_BACK = "GOODS_SENT_BACK"  # no refund; your goods are on their way back to you
    CLOSED = "CLOSED"  # ended, and why (withdrawn, timed out, …)
    REPAIR_PROGRESS = "REPAIR_PROGRESS"  # diagnosed, waiting for parts, repaired, or cannot be repaired
    REISSUE_APPROVED = "REISSUE_APPROVED"  # the missing items are sent again, instead of a refund
    DELIVERY_REFUSED = "DELIVERY_REFUSED"  # you refused the parcel; the refund follows once it is back
    RETURN_DEADLINE_REMINDER = "RETURN_DEADLINE_REMINDER"  # send the goods back before the deadline
    CONFIRM_RECEIPT_REMINDER = "CONFIRM_RECEIPT_REMINDER"  # confirm receipt, or it is confirmed for you


OpenTemplate = Annotated[NotificationTemplate | UnknownMember, OPEN_ENUM]  # new templates may come


@message("BuyerNotification")
class BuyerNotification(Contract):
    """One thing to tell the buyer about their after-sales request; ``notification_id`` is stable
    for the change it reports, so a redelivered change is told once."""

    notification_id: uuid.UUID
    ticket_id: Id
    ticket_no: str = Field(max_length=32)
    order_id: Id
    buyer_id: Id
    template: OpenTemplate
    params: dict[str, str] = Field(default_factory=dict, max_length=20,
                                   description="Values the template needs: amount, deadline, reason, waybill")
    occurred_at: AwareDatetime
