"""Orders sent to a merchant's ERP and its acknowledgements."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import Field

from .envelope import Contract, Id, message
from .warehouse import SkuQuantity


class ErpOrderKind(StrEnum):
    RETURN_RECEIPT = "RETURN_RECEIPT"
    EXCHANGE_SHIPMENT = "EXCHANGE_SHIPMENT"
    REISSUE_SHIPMENT = "REISSUE_SHIPMENT"  # 补发: missing units sent again


@message("ErpOrderRequested")
class ErpOrderRequested(Contract):
    erp_order_id: uuid.UUID
    shop_id: Id
    ticket_id: Id
    ticket_no: str
    order_id: Id
    kind: ErpOrderKind
    lines: list[SkuQuantity] = Field(min_length=1)
    attempt: int = Field(ge=1)


@message("CancelErpOrder")
class CancelErpOrder(Contract):
    """The ticket ended without this order (withdrawn, rejected or closed): the ERP drops it."""

    erp_order_id: uuid.UUID
    shop_id: Id
    ticket_id: Id
    order_id: Id
    kind: ErpOrderKind
    attempt: int = Field(ge=1)


@message("ErpOrderCancelled")
class ErpOrderCancelled(Contract):
    """The ERP confirms a cancel (also for an order it never had)."""

    erp_order_id: uuid.UUID
    order_id: Id


@message("ErpOrderAcknowledged")
class ErpOrderAcknowledged(Contract):
    erp_order_id: uuid.UUID
    order_id: Id
    accepted: bool
    erp_ref: str | None = Field(default=None, max_length=64)
    error: str = Field(default="", max_length=500)
