"""The after-sales reasons catalogue: which reasons a buyer may pick, and which need evidence."""

from __future__ import annotations

from dataclasses import dataclass

from .model import AfterSalesType

QUALITY_REASONS = frozenset({"QUALITY_PROBLEM", "NOT_AS_DESCRIBED", "DAMAGED_IN_TRANSIT", "WRONG_ITEM_SENT"})

_ALL = tuple(AfterSalesType)
_GOODS = (AfterSalesType.REFUND_ONLY, AfterSalesType.RETURN_AND_REFUND, AfterSalesType.EXCHANGE)


@dataclass(frozen=True)
class Reason:
    code: str
    label: str
    types: tuple[AfterSalesType, ...]
    visible: bool = True
    position: int = 0

    @property
    def needs_evidence(self) -> bool:
        return self.code in QUALITY_REASONS


DEFAULT_REASONS: tuple[Reason, ...] = (
    Reason("WRONG_SPEC_CHOSEN", "Wrong model or spec chosen (拍错/多拍)", (*_GOODS, AfterSalesType.CANCEL),
           position=1),
    Reason("NO_LONGER_WANTED", "No longer wanted (不想要了)", (*_GOODS, AfterSalesType.CANCEL), position=2),
    Reason("QUALITY_PROBLEM", "Quality problem (质量问题)", (*_GOODS, AfterSalesType.REPAIR), position=3),
    Reason("NOT_AS_DESCRIBED", "Not as described (与描述不符)", _GOODS, position=4),
    Reason("DAMAGED_IN_TRANSIT", "Damaged in transit (运输破损)", (*_GOODS, AfterSalesType.REPAIR), position=5),
    Reason("WRONG_ITEM_SENT", "Wrong item sent (商家发错货)", _GOODS, position=6),
    Reason("MISSING_ITEM", "Missing item (少件/漏发)",
           (AfterSalesType.REFUND_ONLY, AfterSalesType.RETURN_AND_REFUND), position=7),
    Reason("OTHER", "Other (其他)", _ALL, position=8),
)


LATE_PAYMENT = "LATE_PAYMENT"
"""The system's own reason: a payment that reached an order already closed (never offered to buyers)."""


def needs_evidence(reason_code: str, after_sales_type: AfterSalesType) -> bool:
    """Quality-type reasons need photos for returns, exchanges and repairs (DOMAIN.md)."""
    return reason_code in QUALITY_REASONS and after_sales_type in (
        AfterSalesType.RETURN_AND_REFUND, AfterSalesType.EXCHANGE, AfterSalesType.REPAIR)
