"""Named domain errors. Each carries a machine-readable code and a message a buyer or staff can read."""

from __future__ import annotations


class DomainError(Exception):
    code = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OrderUnknown(DomainError):
    code = "ORDER_UNKNOWN"


class NotYourOrder(DomainError):
    code = "NOT_YOUR_ORDER"


class TypeNotAllowed(DomainError):
    code = "TYPE_NOT_ALLOWED"


class OutsideAfterSalesWindow(DomainError):
    code = "OUTSIDE_AFTER_SALES_WINDOW"


class UnknownLine(DomainError):
    code = "UNKNOWN_LINE"


class InvalidQuantity(DomainError):
    code = "INVALID_QUANTITY"


class UnitsAlreadyInActiveTicket(DomainError):
    code = "UNITS_IN_ACTIVE_TICKET"


class UnitsAlreadyRefunded(DomainError):
    code = "UNITS_ALREADY_REFUNDED"


class UnitsAlreadyExchanged(DomainError):
    code = "UNITS_ALREADY_EXCHANGED"


class VariantNotExchangeable(DomainError):
    code = "VARIANT_NOT_EXCHANGEABLE"


class VariantPriceDiffers(DomainError):
    """An exchange to a variant at another price (seed 004): the difference is not an exchange."""

    code = "VARIANT_PRICE_DIFFERS"


class ReasonNotAvailable(DomainError):
    code = "REASON_NOT_AVAILABLE"


class EvidenceRequired(DomainError):
    code = "EVIDENCE_REQUIRED"


class IllegalTransition(DomainError):
    code = "ILLEGAL_TRANSITION"


class NotPermitted(DomainError):
    code = "NOT_PERMITTED"


class MakerCheckerViolation(DomainError):
    code = "MAKER_CHECKER"


class AmountAboveCap(DomainError):
    code = "AMOUNT_ABOVE_CAP"


class InvalidAmount(DomainError):
    code = "INVALID_AMOUNT"


class ReasonRequired(DomainError):
    code = "REASON_REQUIRED"


class ReturnAddressMissing(DomainError):
    """A return approved with no address to send the goods to (none given, none configured)."""

    code = "RETURN_ADDRESS_MISSING"


class RefundExceedsPaid(DomainError):
    code = "REFUND_EXCEEDS_PAID"


class TicketUnknown(DomainError):
    code = "TICKET_UNKNOWN"


class LifecycleViolation(Exception):
    """A use case asked an aggregate for a move its state forbids: a bug, not a buyer's or staff
    member's mistake, so it is not a ``DomainError`` (no rejection event; the runtime dead-letters
    the message that led here, with the reason)."""


class UnknownReason(DomainError):
    """An admin change names a reason the catalogue does not have (or a reorder leaves some out)."""

    code = "UNKNOWN_REASON"


class NothingToRestart(DomainError):
    """A restart of an ERP order that has not given up (it is sent, acknowledged or cancelled)."""

    code = "NOTHING_TO_RESTART"


class WorkItemUnknown(DomainError):
    code = "WORK_ITEM_UNKNOWN"


class WorkItemNotOpen(DomainError):
    """Acknowledging an item someone took already, or resolving one that is resolved."""

    code = "WORK_ITEM_NOT_OPEN"
