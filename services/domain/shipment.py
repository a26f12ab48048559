"""An after-sales shipment (售后出库): an exchange's replacement, a repaired item, or the buyer's own
goods sent back when the ticket ended without a refund.

REQUESTED (the WMS was asked to ship) → DISPATCHED (carrier and waybill known). A ticket has at
most one open (REQUESTED) shipment, so a redelivered transition never ships twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .erp_order import SkuQuantity


class ShipmentKind(StrEnum):
    EXCHANGE_SHIPMENT = "EXCHANGE_SHIPMENT"
    REPAIR_SHIPMENT = "REPAIR_SHIPMENT"
    REISSUE_SHIPMENT = "REISSUE_SHIPMENT"  # 补发: units missing from the parcel, sent again
    SEND_BACK = "SEND_BACK"  # the buyer's own goods, back to them (the ticket ended without a refund)


class ShipmentStatus(StrEnum):
    REQUESTED = "REQUESTED"
    DISPATCHED = "DISPATCHED"


@dataclass
class Shipment:
    shipment_id: uuid.UUID
    ticket_id: str
    ticket_no: str
    order_id: str
    kind: ShipmentKind
    lines: tuple[SkuQuantity, ...]
    requested_at: datetime
    status: ShipmentStatus = ShipmentStatus.REQUESTED
    carrier: str | None = None
    waybill: str | None = None
    operator: str | None = None
    dispatched_at: datetime | None = None

    @classmethod
    def requested(cls, *, shipment_id: uuid.UUID, ticket_id: str, ticket_no: str, order_id: str, kind: ShipmentKind,
                  lines: tuple[SkuQuantity, ...], at: datetime) -> Shipment:
        return cls(shipment_id, ticket_id, ticket_no, order_id, kind, lines, at)

    def dispatch(self, carrier: str, waybill: str, operator: str, at: datetime) -> bool:
        """The WMS shipped it; False if this was already recorded (the WMS said it twice)."""
        if self.status == ShipmentStatus.DISPATCHED:
            return False
        self.status, self.carrier, self.waybill = ShipmentStatus.DISPATCHED, carrier, waybill
        self.operator, self.dispatched_at = operator, at
        return True


def sku_totals(lines: list[tuple[str, int]]) -> tuple[SkuQuantity, ...]:
    """Units per sku, in first-seen order: what the warehouse and the ERP count."""
    totals: dict[str, int] = {}
    for sku, quantity in lines:
        totals[sku] = totals.get(sku, 0) + quantity
    return tuple(SkuQuantity(sku, q) for sku, q in totals.items())
