"""Messages between the warehouse worker and the WMS: expected receipts, shipments, intercepts."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from .envelope import OPEN_ENUM, Contract, Id, UnknownMember, message


class ReceiptType(StrEnum):
    RETURN_RECEIPT = "RETURN_RECEIPT"
    EXCHANGE_RECEIPT = "EXCHANGE_RECEIPT"
    REPAIR_RECEIPT = "REPAIR_RECEIPT"


class ShipmentType(StrEnum):
    EXCHANGE_SHIPMENT = "EXCHANGE_SHIPMENT"
    REPAIR_SHIPMENT = "REPAIR_SHIPMENT"
    REISSUE_SHIPMENT = "REISSUE_SHIPMENT"  # 补发: units missing from the buyer's parcel, sent again


class Inspection(StrEnum):
    PASSED = "PASSED"
    WRONG_ITEM = "WRONG_ITEM"
    DAMAGED_BY_BUYER = "DAMAGED_BY_BUYER"
    FEWER_UNITS = "FEWER_UNITS"


class SkuQuantity(Contract):
    sku: Id
    quantity: int = Field(ge=0, le=10_000)


@message("ExpectReturn")
class ExpectReturn(Contract):
    ticket_id: Id
    ticket_no: str
    order_id: Id
    receipt_type: ReceiptType
    lines: list[SkuQuantity] = Field(min_length=1)
    carrier: str
    waybill: str


@message("GoodsReceived")
class GoodsReceived(Contract):
    """The WMS received and inspected returned goods (售后入库)."""

    receipt_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    receipt_type: ReceiptType
    lines: list[SkuQuantity] = Field(min_length=1, max_length=200)
    inspection: Inspection
    operator: Id
    received_at: AwareDatetime
    note: str = Field(default="", max_length=500)


@message("ShipAfterSales")
class ShipAfterSales(Contract):
    """An after-sales shipment order (售后出库) for an exchange or a repaired item."""

    shipment_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    shipment_type: ShipmentType
    lines: list[SkuQuantity] = Field(min_length=1)


class RepairStep(StrEnum):
    DIAGNOSED = "DIAGNOSED"
    WAITING_FOR_PARTS = "WAITING_FOR_PARTS"
    REPAIRED = "REPAIRED"
    CANNOT_REPAIR = "CANNOT_REPAIR"  # a person offers the buyer a refund or an exchange instead


@message("RepairProgress")
class RepairProgress(Contract):
    """The warehouse or service centre reports how a repair is going (seed 000): each step is a
    visible line of the ticket's timeline and a notice to the buyer."""

    ticket_id: Id
    order_id: Id
    step: RepairStep
    note: str = Field("", max_length=300)
    operator: Id
    at: AwareDatetime


@message("ReturnGoodsToBuyer")
class ReturnGoodsToBuyer(Contract):
    """Ship the buyer's own returned goods back (the ticket ended without a refund: withdrawn,
    rejected, or sent back after inspection); the WMS answers with AfterSalesDispatched."""

    shipment_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    lines: list[SkuQuantity] = Field(min_length=1)
    reason: str = Field(default="", max_length=500)


@message("AfterSalesDispatched")
class AfterSalesDispatched(Contract):
    shipment_id: uuid.UUID
    ticket_id: Id
    order_id: Id
    carrier: str = Field(min_length=1, max_length=64)
    waybill: str = Field(min_length=1, max_length=64)
    operator: Id
    dispatched_at: AwareDatetime


class InterceptOutcome(StrEnum):
    INTERCEPTED = "INTERCEPTED"
    ALREADY_DISPATCHED = "ALREADY_DISPATCHED"


@message("InterceptShipment")
class InterceptShipment(Contract):
    """Stop an order's outbound shipment: a refund-only ticket was opened before shipment.
    ``lines`` are the units to hold back (empty from older producers: the whole order)."""

    ticket_id: Id
    order_id: Id
    lines: list[SkuQuantity] = Field(default_factory=list, max_length=200)


@message("ReleaseIntercept")
class ReleaseIntercept(Contract):
    """Let an intercepted (or still to be intercepted) shipment go on: the ticket that asked for
    the intercept ended without a refund (withdrawn, rejected or closed)."""

    ticket_id: Id
    order_id: Id
    lines: list[SkuQuantity] = Field(default_factory=list, max_length=200)
    reason: str = Field(default="", max_length=500)


OpenInterceptOutcome = Annotated[InterceptOutcome | UnknownMember, OPEN_ENUM]
"""Open: anything but INTERCEPTED means the goods may be on their way, and a person reviews."""


@message("InterceptResult")
class InterceptResult(Contract):
    ticket_id: Id
    order_id: Id
    outcome: OpenInterceptOutcome
    decided_at: AwareDatetime
