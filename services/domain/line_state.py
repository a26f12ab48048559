"""Each order line's after-sales state, for the order page (seed 004: 售后中 / 已退款 per line).

A line can have several tickets at once on different units (one unit returned, another in
repair), so the state keeps the tickets in progress with their type and units, and what ended:
units refunded with the amount, units exchanged, units repaired. The label is what the order page
shows: anything in progress wins (售后中); then a refund of every unit (已退款) or of some
(部分退款); then exchanged or repaired.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from .model import MONEY_TYPES, AfterSalesType


class LineState(StrEnum):
    NONE = "NONE"
    IN_PROGRESS = "IN_PROGRESS"
    PARTLY_REFUNDED = "PARTLY_REFUNDED"
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"
    EXCHANGED = "EXCHANGED"
    REPAIRED = "REPAIRED"


LABELS = {LineState.NONE: "", LineState.IN_PROGRESS: "售后中", LineState.PARTLY_REFUNDED: "部分退款",
          LineState.REFUNDED: "已退款", LineState.CANCELLED: "已取消", LineState.EXCHANGED: "已换货",
          LineState.REPAIRED: "已维修"}


@dataclass(frozen=True)
class InProgress:
    ticket_id: str
    type: AfterSalesType
    units: int


@dataclass(frozen=True)
class Line:
    order_id: str
    line_no: int
    sku: str
    quantity: int
    in_progress: tuple[InProgress, ...] = ()
    refunded_units: int = 0
    refunded_cents: int = 0
    cancelled_units: int = 0
    exchanged_units: int = 0
    repaired_units: int = 0
    currency: str = "CNY"
    ticket_ids_done: tuple[str, ...] = field(default=())

    @property
    def state(self) -> LineState:
        if self.in_progress:
            return LineState.IN_PROGRESS
        if self.refunded_units:
            return LineState.REFUNDED if self.refunded_units >= self.quantity else LineState.PARTLY_REFUNDED
        if self.cancelled_units:
            return LineState.CANCELLED
        if self.exchanged_units:
            return LineState.EXCHANGED
        if self.repaired_units:
            return LineState.REPAIRED
        return LineState.NONE

    @property
    def label(self) -> str:
        return LABELS[self.state]

    def opened(self, ticket_id: str, type_: AfterSalesType, units: int) -> Line:
        """A ticket on ``units`` of this line opened (again: a redelivery changes nothing)."""
        if any(p.ticket_id == ticket_id for p in self.in_progress) or ticket_id in self.ticket_ids_done:
            return self
        return replace(self, in_progress=(*self.in_progress, InProgress(ticket_id, type_, units)))

    def ended(self, ticket_id: str, type_: AfterSalesType, units: int, *, completed: bool,
              refund_cents: int) -> Line:
        """The ticket completed (its outcome counts) or closed (nothing happened to the units)."""
        if ticket_id in self.ticket_ids_done:
            return self
        line = replace(self, in_progress=tuple(p for p in self.in_progress if p.ticket_id != ticket_id),
                       ticket_ids_done=(*self.ticket_ids_done, ticket_id))
        if not completed:
            return line
        if type_ in MONEY_TYPES:
            return replace(line, refunded_units=line.refunded_units + units,
                           refunded_cents=line.refunded_cents + refund_cents)
        if type_ is AfterSalesType.CANCEL:
            return replace(line, cancelled_units=line.cancelled_units + units)
        if type_ is AfterSalesType.EXCHANGE:
            return replace(line, exchanged_units=line.exchanged_units + units)
        return replace(line, repaired_units=line.repaired_units + units)
