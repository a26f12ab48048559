"""The after-sales ticket: a small aggregate whose methods check the rules and record transitions.

Every method either raises a named ``DomainError`` and changes nothing, or changes the ticket
and appends a ``Transition`` (the audit entry) and possibly an ``Alert``. The deadline of the
state it lands in is set on every transition, so no state can wait forever.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from . import errors
from .model import (
    FINAL_STATUSES,
    GOODS_BACK_TYPES,
    MONEY_TYPES,
    SYSTEM,
    Actor,
    AfterSalesType,
    Inspection,
    InterceptState,
    Role,
    TicketStatus,
)
from .policy import Policy
from .reasons import LATE_PAYMENT
from .refunds import cap_for_positions

S = TicketStatus


@dataclass(frozen=True)
class TicketLine:
    line_no: int
    sku: str
    quantity: int
    positions: tuple[int, ...]
    cap_cents: int
    refund_cents: int
    line_paid_cents: int
    line_quantity: int
    exchange_sku: str | None = None  # an exchange to another variant: shipped instead of ``sku``

    @property
    def paid_in_full(self) -> bool:
        """The refund pays what the units are still worth; less is a compensation (the buyer keeps
        them, and they stay open for the rest)."""
        return self.refund_cents >= self.cap_cents


@dataclass(frozen=True)
class Transition:
    """One audit entry: who moved the ticket from where to where, when, why, and the amount."""

    at: datetime
    from_status: TicketStatus
    to_status: TicketStatus
    actor: Actor
    action: str
    reason: str = ""
    amount_before_cents: int | None = None
    amount_after_cents: int | None = None


@dataclass(frozen=True)
class Alert:
    kind: str
    severity: str
    message: str


@dataclass
class Ticket:
    ticket_id: str
    ticket_no: str
    order_id: str
    shop_id: str
    buyer_id: str
    type: AfterSalesType
    lines: list[TicketLine]
    applied_at: datetime
    reason_code: str = ""
    description: str = ""
    evidence: tuple[str, ...] = ()
    status: TicketStatus = S.PENDING_REVIEW
    before_shipment: bool = False
    paid_at: datetime | None = None
    refund_coupon: bool = False
    refund_virtual_currency: bool = False
    refund_shipping: bool = False
    ops_reviewer_id: str | None = None
    reviewed_at: datetime | None = None
    manager_id: str | None = None
    finance_reviewer_id: str | None = None
    goods_received: bool = False
    intercept: InterceptState = InterceptState.NONE
    return_carrier: str | None = None
    return_waybill: str | None = None
    return_address: dict[str, str] | None = None  # the shop's return desk, given at approval
    reissue: bool = False  # ops sends the units again (补发) instead of refunding them
    delivery_refused: bool = False  # the buyer refused the parcel (拒收): its return is the receipt
    close_reason: str = ""
    deadline_at: datetime | None = None
    deadline_kind: str | None = None
    version: int = 0
    currency: str = "CNY"  # the order's: every amount of the ticket is in it
    changes: list[Transition] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    # ------------------------------------------------------------------ views
    def copy(self) -> Ticket:
        """A copy that shares nothing a rule may change: lines, transitions and alerts are frozen
        values, so only the lists and the return address are copied. (``copy.deepcopy`` of a
        ticket, for each of a batch's tickets served from memory, was 7 % of finance's time.)"""
        twin = copy.copy(self)
        twin.lines = list(self.lines)
        twin.changes = list(self.changes)
        twin.alerts = list(self.alerts)
        twin.return_address = dict(self.return_address) if self.return_address is not None else None
        return twin

    @property
    def refund_total_cents(self) -> int:
        return sum(ln.refund_cents for ln in self.lines)

    @property
    def cap_total_cents(self) -> int:
        return sum(ln.cap_cents for ln in self.lines)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def has_money(self) -> bool:
        return self.type in MONEY_TYPES

    @property
    def goods_not_stopped_yet(self) -> bool:
        """A refund-only before shipment whose intercept is not confirmed: the goods may still
        leave the warehouse, so the money may not (it may be approved, and waits)."""
        return (self.type == AfterSalesType.REFUND_ONLY and self.before_shipment
                and self.intercept in {InterceptState.NONE, InterceptState.REQUESTED})

    @property
    def refund_approved(self) -> bool:
        """Finance (or its policy) approved the refund, and it has not gone out yet."""
        return self.status == S.PENDING_REFUND and self.finance_reviewer_id is not None

    @property
    def refund_waits_for_intercept(self) -> bool:
        """Approved in full, money held until the warehouse confirms the intercept."""
        return self.refund_approved and self.goods_not_stopped_yet

    # ------------------------------------------------------------- opening
    def opened(self, policy: Policy, buyer: Actor) -> None:
        """Records the request, sets the first deadline; a cancel completes at once."""
        self._record(self.status, buyer, self.applied_at, "open", self.reason_code, None,
                     self.refund_total_cents)
        if self.has_money:
            self.refund_virtual_currency = policy.return_virtual_currency
        if self.type == AfterSalesType.CANCEL:
            self._move(S.COMPLETED, SYSTEM, self.applied_at, "cancel", "unpaid order cancelled", policy)
        else:
            self._set_deadline(policy, self.applied_at)

    def refund_late_payment(self, now: datetime, policy: Policy) -> None:
        """A payment that reached an order already closed: the money was never owed, so the system
        refunds all of it, shipping included, at once (no review, manager or finance step), and
        ops is told."""
        self.opened(policy, SYSTEM)
        self.ops_reviewer_id = self.manager_id = self.finance_reviewer_id = SYSTEM.id
        self.reviewed_at, self.refund_shipping = now, True
        self.alerts.append(Alert("LATE_PAYMENT", "WARNING",
                                 f"Order {self.order_id} was paid after it closed: refunded by {self.ticket_no}"))
        self._move(S.REFUNDING, SYSTEM, now, "late_payment", "paid after the order closed: refunded automatically",
                   policy)

    def qualifies_for_instant_refund(self, policy: Policy) -> bool:
        """Refund only, asked within 30 minutes of payment and before shipment: approve automatically."""
        return (self.type == AfterSalesType.REFUND_ONLY and self.before_shipment
                and self.paid_at is not None
                and self.applied_at - self.paid_at <= policy.auto_approve_refund_within)

    # ------------------------------------------------------------- ops review
    def approve(self, actor: Actor, now: datetime, policy: Policy, note: str = "",
                return_address: dict[str, str] | None = None) -> None:
        """``return_address``: where the goods go back, needed when the buyer must send them."""
        self._require(actor, {Role.OPS, Role.SYSTEM}, "approve")
        self._require_status({S.PENDING_REVIEW}, "approve")
        if self.type in GOODS_BACK_TYPES and not self.goods_received and not return_address:
            raise errors.ReturnAddressMissing(
                "Give a return address: the buyer must be told where to send the goods, and the shop has none set.")
        self.ops_reviewer_id = actor.id
        self.reviewed_at = now
        if self.type in GOODS_BACK_TYPES and not self.goods_received:
            self.return_address = dict(return_address or {})
            self._move(S.AWAITING_RETURN, actor, now, "approve", note, policy)
        else:
            self._route_money(actor, now, policy, "approve", note)

    def reissue_missing(self, actor: Actor, now: datetime, policy: Policy, note: str) -> None:
        """Ops resolves a refund-only for units missing from the parcel (少件/漏发) by sending them
        again (补发, seed 000) instead of refunding: the refund drops to nothing, the warehouse
        ships the units, and the buyer confirms them as an exchange's (or it is confirmed for them)."""
        self._require(actor, {Role.OPS}, "reissue the missing units")
        self._require_status({S.PENDING_REVIEW}, "reissue the missing units")
        if self.type != AfterSalesType.REFUND_ONLY or self.before_shipment:
            raise errors.IllegalTransition("Only units of a parcel that was shipped, asked for as a refund, can be "
                                           "sent again.")
        if not note.strip():
            raise errors.ReasonRequired("Say what was missing: it goes on the timeline.")
        self.ops_reviewer_id, self.reviewed_at, self.reissue = actor.id, now, True
        before = self.refund_total_cents
        self.lines = [replace(ln, refund_cents=0) for ln in self.lines]
        self._move(S.AWAITING_RESHIPMENT, actor, now, "reissue", note, policy, before, 0)

    def reject(self, actor: Actor, now: datetime, policy: Policy, reason: str) -> None:
        self._require(actor, {Role.OPS, Role.MANAGER}, "reject")
        allowed = {S.PENDING_REVIEW} if actor.role == Role.OPS else {S.PENDING_MANAGER}
        self._require_status(allowed, "reject")
        if not reason.strip():
            raise errors.ReasonRequired("A rejection needs a reason the buyer can read.")
        self.ops_reviewer_id = self.ops_reviewer_id or actor.id
        self.reviewed_at = self.reviewed_at or now
        self.close_reason = reason
        self._end(actor, now, policy, "reject", reason)

    def adjust_refund(self, actor: Actor, now: datetime, policy: Policy,
                      amounts: dict[int, int], reason: str) -> None:
        """Ops lowers the refund; nobody may raise it above the computed cap."""
        self._require(actor, {Role.OPS}, "adjust the refund")
        self._require_status({S.PENDING_REVIEW, S.INTERVENTION}, "adjust the refund")
        if not self.has_money:
            raise errors.IllegalTransition(f"A {self.type.value} ticket has no refund amount.")
        if not reason.strip():
            raise errors.ReasonRequired("Changing the refund amount needs a recorded reason.")
        self._apply_amounts(amounts)
        before = self.refund_total_cents
        self.lines = [replace(ln, refund_cents=amounts.get(ln.line_no, ln.refund_cents)) for ln in self.lines]
        self._record(self.status, actor, now, "adjust_refund", reason, before, self.refund_total_cents)

    def set_flags(self, actor: Actor, now: datetime, *, coupon: bool, virtual_currency: bool,
                  shipping: bool) -> None:
        self._require(actor, {Role.OPS}, "set refund flags")
        self._require_status({S.PENDING_REVIEW, S.INTERVENTION}, "set refund flags")
        if not self.has_money:
            raise errors.IllegalTransition(f"A {self.type.value} ticket refunds no money.")
        self.refund_coupon, self.refund_virtual_currency, self.refund_shipping = (
            coupon, virtual_currency, shipping)
        flags = f"coupon={coupon} virtual_currency={virtual_currency} shipping={shipping}"
        self._record(self.status, actor, now, "set_flags", flags)

    # ------------------------------------------------------------- money approval
    def approve_large_amount(self, actor: Actor, now: datetime, policy: Policy, note: str = "") -> None:
        self._require(actor, {Role.MANAGER}, "approve a large amount")
        self._require_status({S.PENDING_MANAGER}, "approve a large amount")
        if actor.id == self.ops_reviewer_id:
            raise errors.MakerCheckerViolation("The ops reviewer cannot also approve as manager.")
        self.manager_id = actor.id
        self._route_money(actor, now, policy, "manager_approve", note)

    def approve_refund(self, actor: Actor, now: datetime, policy: Policy, note: str = "") -> None:
        self._require(actor, {Role.FINANCE}, "approve the refund")
        self._require_status({S.PENDING_REFUND}, "approve the refund")
        if self.refund_waits_for_intercept:
            raise errors.IllegalTransition(
                f"The refund of ticket {self.ticket_no} is approved and waits for the warehouse's intercept.")
        if actor.id in {self.ops_reviewer_id, self.manager_id}:
            raise errors.MakerCheckerViolation(
                "The same person cannot make both the review and the finance decision.")
        self.finance_reviewer_id = actor.id
        self._to_refunding(actor, now, policy, "finance_approve", note)

    def send_back(self, actor: Actor, now: datetime, policy: Policy, reason: str) -> None:
        """Finance sends the ticket back to ops review (打回)."""
        self._require(actor, {Role.FINANCE}, "send back")
        self._require_status({S.PENDING_REFUND}, "send back")
        if not reason.strip():
            raise errors.ReasonRequired("Sending back needs a reason for ops.")
        if actor.id in {self.ops_reviewer_id, self.manager_id}:
            raise errors.MakerCheckerViolation(
                "The same person cannot make both the review and the finance decision.")
        self.manager_id = self.finance_reviewer_id = None
        self._move(S.PENDING_REVIEW, actor, now, "finance_send_back", reason, policy)

    def _route_money(self, actor: Actor, now: datetime, policy: Policy, action: str, note: str) -> None:
        amount = self.refund_total_cents
        if amount >= policy.large_amount_threshold_cents and self.manager_id is None:
            self._move(S.PENDING_MANAGER, actor, now, action, note, policy)
        elif self._finance_auto(policy, amount):
            self.finance_reviewer_id = SYSTEM.id
            self._to_refunding(actor, now, policy, action, (note + " (finance approved by policy)").strip())
        else:
            self._move(S.PENDING_REFUND, actor, now, action, note, policy)

    def _end(self, actor: Actor, now: datetime, policy: Policy, action: str, reason: str) -> None:
        """A ticket ends without a refund. If the warehouse holds the buyer's goods, it may end
        only by shipping them back: SENDING_BACK until the WMS dispatches them, then CLOSED."""
        if self.goods_received and self.type in GOODS_BACK_TYPES:
            self._move(S.SENDING_BACK, actor, now, action, f"{reason}; the goods go back to the buyer", policy)
        else:
            self._move(S.CLOSED, actor, now, action, reason, policy)

    def _to_refunding(self, actor: Actor, now: datetime, policy: Policy, action: str, note: str) -> None:
        """Money leaves only when the goods are stopped or back: a refund-only before shipment
        waits, approved, in PENDING_REFUND until the intercept is confirmed."""
        if self.goods_not_stopped_yet:
            self._move(S.PENDING_REFUND, actor, now, action,
                       "; ".join(filter(None, [note, "the refund waits for the warehouse's intercept"])), policy)
        else:
            self._move(S.REFUNDING, actor, now, action, note, policy)

    def check_order_total(self, now: datetime, policy: Policy, order_total_cents: int) -> bool:
        """Finance's last look before money moves, under the order's ledger lock. Review saw one
        ticket's goods only; the manager step and automatic finance approval count everything
        that leaves the order: goods, shipping, coupon and points, over all its tickets in flight
        or done. Returns True when the ticket went back for that approval (no money yet)."""
        self._require_status({S.REFUNDING}, "check the order's refund total")
        if self.reason_code == LATE_PAYMENT:
            return False  # money that was never owed goes back whatever its amount
        if order_total_cents >= policy.large_amount_threshold_cents and self.manager_id is None:
            self.finance_reviewer_id = None  # finance approves after the manager, as for any large amount
            self._move(S.PENDING_MANAGER, SYSTEM, now, "order_total",
                       f"{order_total_cents} cents leave the order in all: a manager approves", policy)
            return True
        if self.finance_reviewer_id == SYSTEM.id and not self._finance_auto(policy, order_total_cents):
            self.finance_reviewer_id = None
            self._move(S.PENDING_REFUND, SYSTEM, now, "order_total",
                       f"{order_total_cents} cents leave the order in all: finance approves", policy)
            return True
        return False

    def _finance_auto(self, policy: Policy, amount: int) -> bool:
        return ((policy.finance_auto_approve_refund_only and self.type == AfterSalesType.REFUND_ONLY)
                or amount < policy.finance_auto_approve_below_cents)

    # ------------------------------------------------------------- refund execution
    def refund_succeeded(self, now: datetime, policy: Policy, amount_cents: int) -> None:
        """Also from REFUND_FAILED: a late success means the money did move."""
        self._require_status({S.REFUNDING, S.REFUND_FAILED}, "complete the refund")
        self._move(S.COMPLETED, SYSTEM, now, "refund_succeeded", "refunded to the original payment route",
                   policy, self.refund_total_cents, amount_cents)

    def refund_failed(self, now: datetime, policy: Policy, reason: str) -> None:
        self._require_status({S.REFUNDING}, "fail the refund")
        self.alerts.append(Alert("REFUND_FAILED", "CRITICAL", f"Refund for ticket {self.ticket_no} failed: {reason}"))
        self._move(S.REFUND_FAILED, SYSTEM, now, "refund_failed", reason, policy)

    def retry_refund(self, actor: Actor, now: datetime, policy: Policy) -> None:
        self._require(actor, {Role.FINANCE}, "retry the refund")
        self._require_status({S.REFUND_FAILED}, "retry the refund")
        self._move(S.REFUNDING, actor, now, "retry_refund", "finance retried the refund", policy)

    # ------------------------------------------------------------- buyer
    def withdraw(self, actor: Actor, now: datetime, policy: Policy, note: str = "") -> None:
        self._require(actor, {Role.BUYER}, "withdraw")
        if actor.id != self.buyer_id:
            raise errors.NotPermitted("Only the buyer who asked can withdraw this request.")
        self._require_status({S.PENDING_REVIEW, S.PENDING_MANAGER, S.PENDING_REFUND, S.AWAITING_RETURN},
                             "withdraw")
        self.close_reason = "withdrawn by the buyer"
        self._end(actor, now, policy, "withdraw", note or "withdrawn by the buyer")

    def submit_return_shipment(self, actor: Actor, now: datetime, policy: Policy,
                               carrier: str, waybill: str) -> None:
        self._require(actor, {Role.BUYER}, "submit the return shipment")
        if actor.id != self.buyer_id:
            raise errors.NotPermitted("Only the buyer who asked can submit the return shipment.")
        self._require_status({S.AWAITING_RETURN}, "submit the return shipment")
        self.return_carrier, self.return_waybill = carrier, waybill
        self._move(S.AWAITING_RECEIPT, actor, now, "return_shipped", f"{carrier} {waybill}", policy)

    def refuse_delivery(self, actor: Actor, now: datetime, policy: Policy, carrier: str, waybill: str, *,
                        parcel_delivered: bool) -> None:
        """The buyer refused the parcel at the door (拒收, seed 003): after a refund-only asked once
        the goods had left, or a return or exchange asked before they arrived. The carrier brings
        the parcel back; its receipt is the return (``receipt_window`` to arrive), so the money
        still leaves only once the goods are back."""
        self._require(actor, {Role.BUYER}, "refuse the parcel")
        if actor.id != self.buyer_id:
            raise errors.NotPermitted("Only the buyer who asked can refuse the parcel.")
        if parcel_delivered:
            raise errors.IllegalTransition("The parcel was delivered already: please send the goods back instead.")
        refund_only_shipped = self.type == AfterSalesType.REFUND_ONLY and not self.before_shipment
        if refund_only_shipped:
            self._require_status({S.PENDING_REVIEW}, "refuse the parcel")
        elif self.type in GOODS_BACK_TYPES:
            self._require_status({S.AWAITING_RETURN}, "refuse the parcel")
        else:
            raise errors.IllegalTransition("Only a refund-only after shipment, or a return or exchange, can "
                                           "refuse the parcel.")
        self.delivery_refused = True
        self.return_carrier, self.return_waybill = carrier, waybill
        self._move(S.AWAITING_RECEIPT, actor, now, "delivery_refused", f"parcel refused: {carrier} {waybill}",
                   policy)

    def confirm_received(self, actor: Actor, now: datetime, policy: Policy) -> None:
        self._require(actor, {Role.BUYER, Role.SYSTEM}, "confirm receipt")
        if actor.role == Role.BUYER and actor.id != self.buyer_id:
            raise errors.NotPermitted("Only the buyer can confirm receipt.")
        self._require_status({S.RESHIPPED}, "confirm receipt")
        self._move(S.COMPLETED, actor, now, "confirm_received", "goods received", policy)

    # ------------------------------------------------------------- warehouse
    def record_inspection(self, actor: Actor, now: datetime, policy: Policy, result: Inspection,
                          received: dict[str, int], note: str = "") -> None:
        """Inspection of returned goods; anything that doesn't match the request goes to intervention.

        A receipt is a physical fact and is always recorded. Goods that arrive late (after the
        receipt window sent the ticket to intervention, or before the buyer entered a waybill)
        are judged as if on time; goods the ticket does not expect (closed, or already received,
        or a refused parcel of a refund-only) raise an alert for a person to act on."""
        self._require(actor, {Role.WAREHOUSE}, "record an inspection")
        expected_now = (self.type in GOODS_BACK_TYPES or self.delivery_refused) and (
            self.status in {S.AWAITING_RETURN, S.AWAITING_RECEIPT}
            or (self.status == S.INTERVENTION and not self.goods_received))
        if not expected_now:
            self.alerts.append(Alert("UNEXPECTED_RECEIPT", "WARNING",
                                     f"Ticket {self.ticket_no} is {self.status.value}: goods received "
                                     f"({result.value}); a person decides what to do with them"))
            if not self.is_final:
                self.goods_received = True
            self._record(self.status, actor, now, "receipt_unexpected", f"{result.value} {note}".strip())
            return
        expected: dict[str, int] = {}
        for ln in self.lines:
            expected[ln.sku] = expected.get(ln.sku, 0) + ln.quantity
        mismatch = ""
        if result != Inspection.PASSED:
            mismatch = result.value
        elif received != expected:
            mismatch = "QUANTITY_OR_SKU_MISMATCH"
        self.goods_received = True
        if mismatch:
            self.alerts.append(Alert("INSPECTION_MISMATCH", "WARNING",
                                     f"Ticket {self.ticket_no}: inspection {mismatch}"))
            self._move(S.INTERVENTION, actor, now, "inspection", f"{mismatch} {note}".strip(), policy)
        elif self.type in (AfterSalesType.RETURN_AND_REFUND, AfterSalesType.REFUND_ONLY):  # refund-only: refused
            self._route_money(actor, now, policy, "inspection", "inspection passed")
        elif self.type == AfterSalesType.EXCHANGE:
            self._move(S.AWAITING_RESHIPMENT, actor, now, "inspection", "inspection passed", policy)
        else:
            self._move(S.IN_REPAIR, actor, now, "inspection", "inspection passed", policy)

    def resolve_intervention(self, actor: Actor, now: datetime, policy: Policy, *, send_back: bool,
                             amounts: dict[int, int], note: str, instead: AfterSalesType | None = None) -> None:
        """``instead``: a repair that cannot be done becomes a refund or an exchange."""
        self._require(actor, {Role.OPS}, "resolve an intervention")
        self._require_status({S.INTERVENTION}, "resolve an intervention")
        if instead is not None:
            self._instead_of_repair(actor, now, policy, instead, note)
            return
        if send_back:
            self.close_reason = "goods sent back to the buyer"
            self._end(actor, now, policy, "intervention_send_back", note)
            return
        if self.type == AfterSalesType.RETURN_AND_REFUND:
            if amounts:
                self._apply_amounts(amounts)
                before = self.refund_total_cents
                self.lines = [replace(ln, refund_cents=amounts.get(ln.line_no, ln.refund_cents))
                              for ln in self.lines]
                self._record(self.status, actor, now, "negotiated_amount", note, before,
                             self.refund_total_cents)
            self.ops_reviewer_id = actor.id
            self._route_money(actor, now, policy, "intervention_negotiated", note)
        elif self.type == AfterSalesType.EXCHANGE:
            self._move(S.AWAITING_RESHIPMENT, actor, now, "intervention_negotiated", note, policy)
        else:
            self._move(S.IN_REPAIR, actor, now, "intervention_negotiated", note, policy)

    def _instead_of_repair(self, actor: Actor, now: datetime, policy: Policy, instead: AfterSalesType,
                           note: str) -> None:
        """The item cannot be repaired (seed 000): the buyer is offered a refund of what the units
        were paid, or a replacement, and the ticket becomes that. The goods are in the warehouse
        already, so a refund may leave at once (through finance, and a manager if large); the
        ledger still holds Σ refunds ≤ paid, compensations included."""
        if self.type != AfterSalesType.REPAIR or not self.goods_received:
            raise errors.IllegalTransition("Only a repair whose item is in the warehouse can become a refund or "
                                           "an exchange.")
        if instead not in (AfterSalesType.RETURN_AND_REFUND, AfterSalesType.EXCHANGE):
            raise errors.IllegalTransition("A repair can become a refund or an exchange only.")
        self.type, self.ops_reviewer_id = instead, actor.id
        if instead == AfterSalesType.EXCHANGE:
            self._move(S.AWAITING_RESHIPMENT, actor, now, "exchange_instead_of_repair", note, policy)
            return
        self.lines = [replace(ln, cap_cents=(worth := cap_for_positions(ln.line_paid_cents, ln.line_quantity,
                                                                        ln.positions)), refund_cents=worth)
                      for ln in self.lines]
        self._record(self.status, actor, now, "repair_refund_amount", "what the units were paid", 0,
                     self.refund_total_cents)
        self._route_money(actor, now, policy, "refund_instead_of_repair", note)

    def record_repair_progress(self, actor: Actor, now: datetime, policy: Policy, step: str, note: str) -> None:
        """A step of the repair, on the timeline (``repair_progress``: "STEP: note"). An item that
        cannot be repaired goes to a person, who offers the buyer another way (intervention)."""
        self._require(actor, {Role.WAREHOUSE}, "report repair progress")
        self._require_status({S.IN_REPAIR}, "report repair progress")
        if step == "CANNOT_REPAIR":
            self.alerts.append(Alert("REPAIR_IMPOSSIBLE", "WARNING",
                                     f"Ticket {self.ticket_no}: cannot be repaired; offer a refund or an exchange"))
            self._move(S.INTERVENTION, actor, now, "repair_progress", f"{step}: {note}".strip(": "), policy)
            return
        self._record(S.IN_REPAIR, actor, now, "repair_progress", f"{step}: {note}".strip(": "))

    def record_reshipment(self, actor: Actor, now: datetime, policy: Policy, carrier: str, waybill: str) -> None:
        self._require(actor, {Role.WAREHOUSE}, "record the after-sales shipment")
        self._require_status({S.AWAITING_RESHIPMENT, S.IN_REPAIR, S.SENDING_BACK}, "record the after-sales shipment")
        if self.status == S.SENDING_BACK:  # the buyer's own goods are on their way back: the ticket ends
            self._move(S.CLOSED, actor, now, "sent_back", f"goods sent back to the buyer: {carrier} {waybill}", policy)
            return
        self._move(S.RESHIPPED, actor, now, "reshipped", f"{carrier} {waybill}", policy)

    def record_intercept(self, now: datetime, policy: Policy, intercepted: bool) -> bool:
        """The warehouse's answer, recorded whenever it comes (a late one too). Intercepted: the
        goods are stopped, so an approved refund goes out and an unreviewed one is approved.
        Already dispatched: no money while the goods travel; the ticket goes back to a person.
        Returns True when the held shipment must be released (the ticket had already ended)."""
        if self.intercept == InterceptState.NONE:
            raise errors.IllegalTransition("No intercept was requested for this ticket.")
        self.intercept = InterceptState.INTERCEPTED if intercepted else InterceptState.ALREADY_DISPATCHED
        if self.is_final:  # a late answer: recorded; a held shipment no one wants any more is released
            self._record(self.status, SYSTEM, now, "intercept_result", f"{self.intercept.value} (late)")
            return self.release_intercept(now)
        if intercepted:
            self._intercepted(now, policy)
        else:
            self._dispatched(now, policy, "goods already dispatched")
        return False

    def _intercepted(self, now: datetime, policy: Policy) -> None:
        if self.status == S.PENDING_REVIEW:
            self.approve(SYSTEM, now, policy, "shipment intercepted; approved automatically")
        elif self.refund_approved:  # held for the intercept, which just came
            self._move(S.REFUNDING, SYSTEM, now, "intercept_result", "shipment intercepted; the refund goes out",
                       policy)
        else:
            self._record(self.status, SYSTEM, now, "intercept_result", InterceptState.INTERCEPTED.value)
            self._set_deadline(policy, now)

    def _dispatched(self, now: datetime, policy: Policy, what: str) -> None:
        if self.status == S.PENDING_REVIEW:
            self._record(self.status, SYSTEM, now, "intercept_result", f"{what}; a person reviews")
            self._set_deadline(policy, self.applied_at)
        elif self.status in {S.PENDING_MANAGER, S.PENDING_REFUND}:
            self.alerts.append(Alert("INTERCEPT_FAILED", "WARNING",
                                     f"Ticket {self.ticket_no}: {what}; back to review, no money sent"))
            self.manager_id = self.finance_reviewer_id = None
            self._move(S.PENDING_REVIEW, SYSTEM, now, "intercept_result",
                       f"{what}; back to review (the buyer may refuse delivery)", policy)
        else:  # money is moving or moved while the goods travel: a person must recover it
            self.alerts.append(Alert("REFUND_PAID_GOODS_DISPATCHED", "CRITICAL",
                                     f"Ticket {self.ticket_no} is {self.status.value} but order {self.order_id} "
                                     f"was dispatched: recover the goods or the money"))
            self._record(self.status, SYSTEM, now, "intercept_result", what)

    def release_intercept(self, now: datetime) -> bool:
        """A ticket that ended without a refund lets its intercept go (asked for or confirmed),
        so the buyer's parcel is not held for ever; True when the warehouse must be told."""
        if not self.is_final or self.intercept not in {InterceptState.REQUESTED, InterceptState.INTERCEPTED}:
            return False
        if self.status == S.COMPLETED and self.type == AfterSalesType.REFUND_ONLY:
            return False  # refunded: the goods stay stopped
        self.intercept = InterceptState.RELEASED
        self._record(self.status, SYSTEM, now, "intercept_released", "the held shipment may go on")
        return True

    def request_intercept(self, now: datetime, policy: Policy) -> None:
        self.intercept = InterceptState.REQUESTED
        if not self.is_final:
            self._set_deadline(policy, now)

    # ------------------------------------------------------------- deadlines
    def on_deadline(self, now: datetime, policy: Policy) -> None:
        """What happens when the current state's deadline passes."""
        if self.deadline_at is None or now < self.deadline_at or self.is_final:
            return
        kind = self.deadline_kind
        if self.status == S.AWAITING_RETURN:
            self.close_reason = "timed out waiting for the buyer's return"
            self._move(S.CLOSED, SYSTEM, now, "timeout", self.close_reason, policy)
        elif self.status == S.AWAITING_RECEIPT:
            self.alerts.append(Alert("RECEIPT_OVERDUE", "WARNING",
                                     f"Ticket {self.ticket_no}: returned goods not received in time"))
            self._move(S.INTERVENTION, SYSTEM, now, "timeout", "warehouse receipt overdue", policy)
        elif self.status == S.RESHIPPED:
            self._move(S.COMPLETED, SYSTEM, now, "auto_confirm", "receipt confirmed automatically", policy)
        elif self.intercept == InterceptState.REQUESTED and kind == "intercept":
            self.intercept = InterceptState.ALREADY_DISPATCHED  # a late "intercepted" is still recorded
            self._dispatched(now, policy, "no intercept answer in time")
        elif (self.status == S.PENDING_REVIEW and policy.auto_approve_refund_only_on_review_sla
              and self.type == AfterSalesType.REFUND_ONLY):
            self.alerts.append(Alert("REVIEW_SLA_BREACHED", "WARNING",
                                     f"Ticket {self.ticket_no} waited for review; approved automatically"))
            self.approve(SYSTEM, now, policy, "review SLA passed; approved automatically by shop policy")
        else:
            self.alerts.append(Alert(f"{self.status.value}_SLA_BREACHED", "WARNING",
                                     f"Ticket {self.ticket_no} is overdue in {self.status.value}"))
            self.deadline_at = now + policy.sla_realert_every
            self.deadline_kind = "sla_realert"

    # ------------------------------------------------------------- internals
    def _apply_amounts(self, amounts: dict[int, int]) -> None:
        by_no = {ln.line_no: ln for ln in self.lines}
        for line_no, cents in amounts.items():
            line = by_no.get(line_no)
            if line is None:
                raise errors.UnknownLine(f"Line {line_no} is not part of this ticket.")
            if cents < 0:
                raise errors.InvalidAmount("A refund amount cannot be negative.")
            if cents > line.cap_cents:
                raise errors.AmountAboveCap(
                    f"Line {line_no}: {cents} cents is above the cap of {line.cap_cents} cents.")

    def _require(self, actor: Actor, roles: Iterable[Role], what: str) -> None:
        if actor.role not in set(roles):
            raise errors.NotPermitted(f"A {actor.role.value} may not {what}.")

    def _require_status(self, allowed: set[TicketStatus], what: str) -> None:
        if self.status not in allowed:
            raise errors.IllegalTransition(
                f"Cannot {what}: ticket {self.ticket_no} is {self.status.value}.")

    def _record(self, to: TicketStatus, actor: Actor, now: datetime, action: str, reason: str = "",
                before: int | None = None, after: int | None = None) -> None:
        self.changes.append(Transition(now, self.status, to, actor, action, reason, before, after))

    def _move(self, to: TicketStatus, actor: Actor, now: datetime, action: str, reason: str,
              policy: Policy, before: int | None = None, after: int | None = None) -> None:
        self._record(to, actor, now, action, reason, before, after)
        self.status = to
        self._set_deadline(policy, now)

    def _set_deadline(self, policy: Policy, now: datetime) -> None:
        self.deadline_kind, wait = _deadline_for(self, policy)
        self.deadline_at = None if wait is None else now + wait


def _deadline_for(ticket: Ticket, policy: Policy) -> tuple[str | None, timedelta | None]:
    status = ticket.status
    if status in FINAL_STATUSES:
        return None, None
    waits_for_intercept = status == S.PENDING_REVIEW or ticket.refund_waits_for_intercept
    if ticket.intercept == InterceptState.REQUESTED and waits_for_intercept:
        return "intercept", policy.intercept_wait
    table: dict[TicketStatus, tuple[str, timedelta]] = {
        S.PENDING_REVIEW: ("review_sla", policy.review_sla),
        S.PENDING_MANAGER: ("approval_sla", policy.approval_sla),
        S.PENDING_REFUND: ("approval_sla", policy.approval_sla),
        S.REFUNDING: ("refund_result_sla", policy.refund_result_sla),
        S.REFUND_FAILED: ("approval_sla", policy.approval_sla),
        S.AWAITING_RETURN: ("return_window", policy.return_window),
        S.AWAITING_RECEIPT: ("receipt_window", policy.receipt_window),
        S.INTERVENTION: ("approval_sla", policy.approval_sla),
        S.AWAITING_RESHIPMENT: ("approval_sla", policy.approval_sla),
        S.IN_REPAIR: ("repair_sla", policy.repair_sla),
        S.RESHIPPED: ("auto_confirm", policy.reshipped_auto_confirm),
        S.SENDING_BACK: ("approval_sla", policy.approval_sla),
    }
    kind, wait = table[status]
    return kind, wait
