"""One whole order, driven by hypothesis through every worker's use cases on the fakes: the
buyer asks for any after-sales type on any units, staff decide, the WMS, the payment channel,
the ERP and the order system answer (or not, or late), time passes and deadlines fire, and the
messages between workers arrive in any order the topics allow (each topic keeps its order per
consumer, topics interleave freely).

After every step the money and order rules of DOMAIN.md hold, checked from what crossed the
topics and what the channel paid, not from the workers' own bookkeeping:

- Σ refunds paid per line ≤ what the line paid, and the channel pays each refund id once;
- no payment for a refund-only whose goods are neither stopped (intercepted) nor back (a
  passed receipt), nor for a return before its goods came back;
- a unit is in at most one active ticket;
- finance asks to close the order once, and exactly when every unit's paid amount is refunded
  in full (a compensation leaves the order open);
- every ticket that has not ended has a deadline.

Why on the fakes: thousands of interleavings a minute; the integration and e2e tests run the
same use cases on PostgreSQL and Kafka.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from contracts import Contract, Envelope, Money, new_envelope, ops
from contracts import aftersales as c
from contracts import decisions as d
from contracts import erp as e
from contracts import orders as o
from contracts import payments as p
from contracts import warehouse as w
from contracts.signing import signed
from contracts.topics import BY_NAME
from services.common.routes import Deps, PeriodicJob, Route
from services.common.runtime import InvalidMessage, run_due
from services.common.settings import Settings
from services.domain.errors import DomainError
from services.domain.model import MONEY_TYPES, AfterSalesType, InterceptState, Role, TicketStatus
from services.domain.reasons import LATE_PAYMENT
from services.domain.ticket import Ticket
from services.erp_sync import service as erp_service
from services.finance import service as finance_service
from services.scheduler import service as scheduler_service
from tests.unit import fakes

from .shop import CHANNEL_KEY, CHANNEL_KEYS, WORKERS

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BUYER = "buyer-1"
OPS, OTHER_OPS, FINANCE, MANAGER = ("ops", "ops-1"), ("ops", "ops-2"), ("finance", "fin-1"), ("manager", "mgr-1")
SIMULATED = {"wms", "payment-channel", "order-system", "erp", "marketing", "settlement", "buyer-frontend",
             "back-office", "ops"}
ANSWERED = {"InterceptShipment", "ExpectReturn", "ShipAfterSales", "ReturnGoodsToBuyer", "ExecuteRefund",
            "CloseOrder", "ErpOrderRequested", "CancelErpOrder", "ReturnCompensation"}
REASONS_FOR = {AfterSalesType.CANCEL: ["NO_LONGER_WANTED"], AfterSalesType.REPAIR: ["OTHER"],
               AfterSalesType.REFUND_ONLY: ["NO_LONGER_WANTED", "MISSING_ITEM", "OTHER"],
               AfterSalesType.RETURN_AND_REFUND: ["NO_LONGER_WANTED", "OTHER"],
               AfterSalesType.EXCHANGE: ["WRONG_SPEC_CHOSEN", "OTHER"]}
STAFF_DECISIONS = ["approve", "approve_by_other", "reject", "lower", "flags", "finance_approve", "send_back",
                   "manager_approve", "retry", "resolve_negotiated", "resolve_as_asked", "resolve_send_back"]
STAFF_FITS = {TicketStatus.PENDING_REVIEW: ["approve", "approve", "approve", "reject", "lower", "flags"],
              TicketStatus.PENDING_MANAGER: ["manager_approve"],
              TicketStatus.PENDING_REFUND: ["finance_approve", "finance_approve", "send_back"],
              TicketStatus.REFUND_FAILED: ["retry"],
              TicketStatus.INTERVENTION: ["resolve_negotiated", "resolve_as_asked", "resolve_send_back"]}
BUYER_FITS = {TicketStatus.AWAITING_RETURN: ["ship_back"], TicketStatus.RESHIPPED: ["confirm_exchange"]}
WAITS = [timedelta(minutes=1), timedelta(minutes=31), timedelta(hours=2), timedelta(days=1), timedelta(days=4),
         timedelta(days=8), timedelta(days=15)]


def _topic_routes() -> dict[tuple[str, str], dict[str, Route[Any, Any]]]:
    """(worker, topic) → the routes that worker registered on that topic."""
    from services.dead_letters import handlers as dead_letters
    from services.erp_sync import handlers as erp
    from services.finance import handlers as finance
    from services.intake import handlers as intake
    from services.review import handlers as review
    from services.warehouse import handlers as warehouse

    found: dict[tuple[str, str], dict[str, Route[Any, Any]]] = {}
    for worker, module in (("intake", intake), ("review", review), ("finance", finance),
                           ("warehouse", warehouse), ("erp_sync", erp), ("dead_letters", dead_letters)):
        for sub in module.subscriptions():
            found[(worker, sub.topic_name)] = {r.type_name: r for r in sub.routes}
    return found


TOPIC_ROUTES = _topic_routes()


class WholeOrder(RuleBasedStateMachine):
    """The order, the topics between the workers, and the outside world the test plays."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        # the workers' ids from a seeded generator: a replayed example (hypothesis shrinking it)
        # must behave the same, and some orders of work follow ids
        self.real_uuid4, ids = uuid.uuid4, random.Random(0)  # noqa: S311  (test ids, not secrets)
        uuid.uuid4 = lambda: uuid.UUID(int=ids.getrandbits(128), version=4)
        self.now = T0
        self.db = fakes.FakeDatabase(lambda: self.now)
        self.order_id = f"O-{uuid.uuid4().hex[:8]}"
        self.placed: o.OrderPlaced | None = None
        self.paid = False
        self.shipped = False
        self.seen = 0  # outbox entries already routed
        self.queues: dict[tuple[str, str], deque[Envelope[Any]]] = defaultdict(deque)
        self.outside: dict[str, list[Envelope[Any]]] = defaultdict(list)  # type → what the world must answer
        self.channel_paid: dict[uuid.UUID, tuple[str, int]] = {}  # refund id → (ticket, cents)
        self.stopped: set[str] = set()  # tickets whose goods the WMS intercepted
        self.back: set[str] = set()  # tickets whose goods came back and passed inspection
        self.received: set[str] = set()  # tickets with any receipt
        self.order_closed = False
        self.refused: list[str] = []  # rejected commands and dead letters, for the failure message
        self.deps: Deps | None = None

    def teardown(self) -> None:
        uuid.uuid4 = self.real_uuid4
        self.loop.close()
        for ticket in self._tickets():
            event(f"{ticket.type.value} ended {ticket.status.value}")
        if self.channel_paid:
            event("the channel paid")
        if any(s.producer == "finance" and s.envelope.type == "CloseOrder" for s in self.db.state.outbox):
            event("finance closed the order")
        for refusal in self.refused:
            event(f"refused: {refusal.split(':')[0]}")

    # ------------------------------------------------------------------ the order
    @initialize(
        lines=st.lists(st.tuples(st.integers(1, 3), st.sampled_from([0, 999, 10_000, 33_333, 260_000]),
                                 st.sampled_from([0, 500])), min_size=1, max_size=3),
        shipping=st.sampled_from([0, 800]),
        state=st.sampled_from(["PENDING_PAYMENT", "PAID", "SHIPPED", "COMPLETED"]),
        threshold=st.sampled_from([500_000, 20_000]),
        finance_auto=st.booleans(),
        has_erp=st.booleans())
    def place_order(self, lines: list[tuple[int, int, int]], shipping: int, state: str, threshold: int,
                    finance_auto: bool, has_erp: bool) -> None:
        policy = {"large_amount_threshold_cents": threshold, "finance_auto_approve_refund_only": finance_auto,
                  "has_erp": has_erp}
        self.deps = Deps(Settings(policy=json.dumps(policy), shop_policies="{}", payment_signing_keys=CHANNEL_KEYS),
                         lambda: self.now)
        placed_at = self.now - timedelta(minutes=5)
        self.placed = o.OrderPlaced(
            order_id=self.order_id, shop_id="shop-1", buyer_id=BUYER, placed_at=placed_at,
            lines=[o.OrderLine(line_no=no, sku=f"SKU-{no}", quantity=quantity,
                               unit_price=Money(cents=(paid + coupon) // quantity), paid=Money(cents=paid),
                               coupon_deduction=Money(cents=min(coupon, paid)))
                   for no, (quantity, paid, coupon) in enumerate(lines, start=1)],
            shipping_fee=Money(cents=shipping))
        self._fact(self.placed)
        if state != "PENDING_PAYMENT":
            self._pay(placed_at + timedelta(minutes=1))
        if state in ("SHIPPED", "COMPLETED"):
            self._fact(o.OrderShipped(order_id=self.order_id, shipped_at=self.now))
            self.shipped = True
        if state == "COMPLETED":
            self._fact(o.OrderCompleted(order_id=self.order_id, completed_at=self.now))
        self._route()

    def _fact(self, fact: Contract) -> None:
        self._publish("orders.events", fact, producer="order-system")

    def _pay(self, paid_at: datetime) -> None:
        self._fact(o.OrderPaid(order_id=self.order_id, paid_at=paid_at))
        self.paid = True

    # ------------------------------------------------------------------ the bus
    def _publish(self, topic: str, payload: Contract, *, producer: str, cause: Envelope[Any] | None = None) -> None:
        """What the outside world (the test) publishes, queued for every worker that reads it."""
        envelope = new_envelope(payload, key=self.order_id, producer=producer, cause=cause, occurred_at=self.now)
        self._queue(topic, envelope)

    def _queue(self, topic: str, envelope: Envelope[Any]) -> None:
        for consumer in BY_NAME[topic].consumers:
            if consumer in SIMULATED:
                if envelope.type in ANSWERED:
                    self.outside[envelope.type].append(envelope)
            elif (consumer, topic) in TOPIC_ROUTES:
                self.queues[(consumer, topic)].append(envelope)

    def _route(self) -> None:
        """The relay: what committed transactions staged reaches the topics (and is checked)."""
        for staged in self.db.state.outbox[self.seen:]:
            self._check_money_may_leave(staged.envelope)
            self._queue(staged.topic, staged.envelope)
        self.seen = len(self.db.state.outbox)

    def _run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _deliver(self, worker: str, topic: str, envelope: Envelope[Any]) -> None:
        """One message through the worker's use case in one unit of work, as the runtime does: a
        refusal (domain rule) or an unprocessable message rolls back and is set aside."""
        assert self.deps is not None
        found = TOPIC_ROUTES[(worker, topic)].get(envelope.type)
        if found is None:
            return  # a type this worker skips
        _, unit_of_work = WORKERS[worker]
        try:
            async with unit_of_work(self.db, worker) as uow:
                await found.use_case(envelope, uow, self.deps)
                await uow.commit()
        except (DomainError, InvalidMessage) as refused:
            self.refused.append(f"{worker} {envelope.type}: {refused}")

    @precondition(lambda self: any(self.queues.values()))
    @rule(data=st.data())
    def a_worker_consumes(self, data: st.DataObject) -> None:
        waiting = sorted(k for k, q in self.queues.items() if q)
        worker, topic = data.draw(st.sampled_from(waiting), label="consumer")
        self._run(self._deliver(worker, topic, self.queues[(worker, topic)].popleft()))
        self._route()

    def _settle(self, data: st.DataObject) -> None:
        """After something happened outside, the workers mostly catch up at once, in an
        interleaving drawn message by message; sometimes the messages stay in flight, so the next
        outside event overtakes them."""
        if data.draw(st.integers(0, 3), label="catch up") == 0:
            return
        for _ in range(300):
            waiting = sorted(k for k, q in self.queues.items() if q)
            if not waiting:
                return
            worker, topic = data.draw(st.sampled_from(waiting), label="consumer")
            self._run(self._deliver(worker, topic, self.queues[(worker, topic)].popleft()))
            self._route()
        raise AssertionError("the workers keep messaging each other: a loop")

    # ------------------------------------------------------------------ the buyer
    def _tickets(self) -> list[Ticket]:
        return list(self.db.state.tickets.values())  # in the order they opened (ticket numbers are random)

    def _open_tickets(self) -> list[Ticket]:
        return [t for t in self._tickets() if not t.is_final]

    @rule(data=st.data(), type_=st.sampled_from(list(AfterSalesType)))
    def buyer_asks(self, data: st.DataObject, type_: AfterSalesType) -> None:
        assert self.placed is not None
        lines: list[c.RequestedLine] = []
        if type_ != AfterSalesType.CANCEL:
            chosen = data.draw(st.lists(st.sampled_from(self.placed.lines), min_size=1, max_size=2,
                                        unique_by=lambda ln: ln.line_no), label="lines")
            lines = [c.RequestedLine(line_no=ln.line_no, quantity=data.draw(st.integers(1, ln.quantity)))
                     for ln in chosen]
        self._publish("aftersales.requests", c.RequestAfterSales(
            request_id=uuid.uuid4(), order_id=self.order_id, buyer_id=BUYER, type=c.AfterSalesType(type_.value),
            lines=lines, reason_code=data.draw(st.sampled_from(REASONS_FOR[type_]), label="reason"),
            requested_at=self.now), producer="buyer-frontend")
        self._settle(data)

    def _pick(self, data: st.DataObject, fitting: dict[TicketStatus, list[str]],
              every: list[str]) -> tuple[Ticket, str]:
        """A ticket and an action: mostly one its status expects (to get deep into lifecycles),
        sometimes any (to try what should be refused)."""
        ticket = data.draw(st.sampled_from(self._open_tickets()), label="ticket")
        expected = fitting.get(ticket.status, [])
        if expected and data.draw(st.integers(0, 3), label="fitting") > 0:
            return ticket, data.draw(st.sampled_from(expected), label="action")
        return ticket, data.draw(st.sampled_from(every), label="action")

    @precondition(lambda self: self._open_tickets())
    @rule(data=st.data())
    def buyer_follows_up(self, data: st.DataObject) -> None:
        ticket, action = self._pick(data, BUYER_FITS, ["withdraw", "ship_back", "confirm_exchange"])
        ids = {"ticket_id": ticket.ticket_id, "order_id": self.order_id, "buyer_id": BUYER}
        message: Contract = {"withdraw": lambda: c.WithdrawTicket(**ids),
                             "ship_back": lambda: c.SubmitReturnShipment(**ids, carrier="SF", waybill="SF1"),
                             "confirm_exchange": lambda: c.ConfirmExchangeReceived(**ids)}[action]()
        self._publish("aftersales.requests", message, producer="buyer-frontend")
        self._settle(data)

    # ------------------------------------------------------------------ the back office
    @precondition(lambda self: self._open_tickets())
    @rule(data=st.data())
    def staff_decide(self, data: st.DataObject) -> None:
        ticket, decision = self._pick(data, STAFF_FITS, STAFF_DECISIONS)
        base = {"ticket_id": ticket.ticket_id, "order_id": self.order_id}

        def by(who: tuple[str, str]) -> dict[str, Any]:
            return {**base, "actor": c.Actor(role=c.Role(who[0]), id=who[1])}

        lowered = [d.LineAmount(line_no=ln.line_no, refund_cents=ln.cap_cents // 2) for ln in ticket.lines]
        message: Contract = {
            "approve": lambda: d.ApproveTicket(**by(OPS)),
            "approve_by_other": lambda: d.ApproveTicket(**by(OTHER_OPS)),
            "reject": lambda: d.RejectTicket(**by(OPS), reason="not eligible"),
            "lower": lambda: d.AdjustRefundAmount(**by(OPS), lines=lowered, reason="partial: buyer keeps it"),
            "flags": lambda: d.SetRefundFlags(**by(OPS), refund_coupon=True, refund_shipping=True),
            "finance_approve": lambda: d.ApproveRefund(**by(FINANCE)),
            "send_back": lambda: d.SendBackRefund(**by(FINANCE), reason="check the amount"),
            "manager_approve": lambda: d.ApproveLargeRefund(**by(MANAGER)),
            "retry": lambda: d.RetryRefund(**by(FINANCE)),
            "resolve_negotiated": lambda: d.ResolveIntervention(
                **by(OPS), outcome=d.InterventionOutcome.NEGOTIATED, lines=lowered, note="half for what came back"),
            "resolve_as_asked": lambda: d.ResolveIntervention(
                **by(OPS), outcome=d.InterventionOutcome.NEGOTIATED, note="the buyer is right"),
            "resolve_send_back": lambda: d.ResolveIntervention(
                **by(OPS), outcome=d.InterventionOutcome.SEND_BACK, note="goods go back"),
        }[decision]()
        self._publish("aftersales.decisions", message, producer="back-office")
        self._settle(data)

    # ------------------------------------------------------------------ the outside world
    def _waiting(self, *types: str) -> list[Envelope[Any]]:
        return [env for type_name in types for env in self.outside[type_name]]

    def _take(self, data: st.DataObject, *types: str) -> Envelope[Any]:
        envelope = data.draw(st.sampled_from(self._waiting(*types)), label="command")
        self.outside[envelope.type].remove(envelope)
        return envelope

    @precondition(lambda self: self._waiting("InterceptShipment"))
    @rule(data=st.data(), intercepted=st.booleans())
    def wms_answers_intercept(self, data: st.DataObject, intercepted: bool) -> None:
        asked = self._take(data, "InterceptShipment").payload
        if intercepted:
            self.stopped.add(asked.ticket_id)
        outcome = w.InterceptOutcome.INTERCEPTED if intercepted else w.InterceptOutcome.ALREADY_DISPATCHED
        self._publish("wms.events", w.InterceptResult(ticket_id=asked.ticket_id, order_id=self.order_id,
                                                      outcome=outcome, decided_at=self.now), producer="wms")
        self._settle(data)

    @precondition(lambda self: self._waiting("ExpectReturn"))
    @rule(data=st.data(), inspection=st.sampled_from(list(w.Inspection)))
    def wms_receives_return(self, data: st.DataObject, inspection: w.Inspection) -> None:
        expected = self._take(data, "ExpectReturn").payload
        lines = expected.lines
        if inspection == w.Inspection.FEWER_UNITS:
            lines = [w.SkuQuantity(sku=ln.sku, quantity=max(ln.quantity - 1, 0)) for ln in lines]
        self.received.add(expected.ticket_id)
        if inspection == w.Inspection.PASSED:
            self.back.add(expected.ticket_id)
        self._publish("wms.events", w.GoodsReceived(
            receipt_id=uuid.uuid4(), ticket_id=expected.ticket_id, order_id=self.order_id,
            receipt_type=expected.receipt_type, lines=lines, inspection=inspection, operator="wh-1",
            received_at=self.now), producer="wms")
        self._settle(data)

    @precondition(lambda self: self._waiting("ShipAfterSales", "ReturnGoodsToBuyer"))
    @rule(data=st.data())
    def wms_dispatches(self, data: st.DataObject) -> None:
        asked = self._take(data, "ShipAfterSales", "ReturnGoodsToBuyer").payload
        self._publish("wms.events", w.AfterSalesDispatched(
            shipment_id=asked.shipment_id, ticket_id=asked.ticket_id, order_id=self.order_id, carrier="SF",
            waybill=f"SF{uuid.uuid4().hex[:6]}", operator="wh-1", dispatched_at=self.now), producer="wms")
        self._settle(data)

    @precondition(lambda self: self._waiting("ExecuteRefund"))
    @rule(data=st.data(), answer=st.sampled_from(["paid", "paid", "busy", "declined", "lost"]))
    def channel_answers(self, data: st.DataObject, answer: str) -> None:
        """Idempotent by refund id, as a real channel: a refund paid once is reported paid again."""
        asked = self._take(data, "ExecuteRefund").payload
        if asked.refund_id in self.channel_paid:
            answer = "paid"
        if answer == "paid":
            self.channel_paid.setdefault(asked.refund_id, (asked.ticket_id, asked.amount.cents))
            self._publish("payments.refund-results", signed(p.RefundSucceeded(
                refund_id=asked.refund_id, ticket_id=asked.ticket_id, order_id=self.order_id, amount=asked.amount,
                channel_ref=f"PAY-{asked.refund_id.hex[:8]}", settled_at=self.now), *CHANNEL_KEY),
                producer="payment-channel")
        elif answer != "lost":  # a lost answer: finance's resend (a periodic job) has to notice
            self._publish("payments.refund-results", signed(p.RefundFailed(
                refund_id=asked.refund_id, ticket_id=asked.ticket_id, order_id=self.order_id, code=answer.upper(),
                message="channel says no", retryable=answer == "busy"), *CHANNEL_KEY), producer="payment-channel")
        self._settle(data)

    @precondition(lambda self: self._waiting("CloseOrder", "ErpOrderRequested", "CancelErpOrder",
                                             "ReturnCompensation"))
    @rule(data=st.data())
    def the_other_systems_answer(self, data: st.DataObject) -> None:
        """The order system closes (never a paid order for its payment timeout), the ERP and
        marketing acknowledge."""
        asked = self._take(data, "CloseOrder", "ErpOrderRequested", "CancelErpOrder", "ReturnCompensation")
        command = asked.payload
        if isinstance(command, o.CloseOrder):
            if command.ticket_id is None and self.paid:
                return
            if not self.order_closed:
                self.order_closed = True
                self._fact(o.OrderClosed(order_id=self.order_id, closed_at=self.now, reason=command.reason))
        elif isinstance(command, e.ErpOrderRequested):
            self._publish("erp.acks", e.ErpOrderAcknowledged(erp_order_id=command.erp_order_id,
                                                             order_id=self.order_id, accepted=True, erp_ref="ERP1"),
                          producer="erp")
        elif isinstance(command, e.CancelErpOrder):
            self._publish("erp.acks", e.ErpOrderCancelled(erp_order_id=command.erp_order_id,
                                                          order_id=self.order_id), producer="erp")
        else:
            self._publish("marketing.compensation-acks", ops.CompensationAcknowledged(
                compensation_id=command.compensation_id, order_id=self.order_id), producer="marketing")
        self._settle(data)

    @precondition(lambda self: not self.order_closed and not (self.paid and self.shipped))
    @rule(data=st.data())
    def the_order_moves_on(self, data: st.DataObject) -> None:
        """The order system's own facts: a payment (maybe late), then the parcel leaving."""
        if not self.paid:
            self._pay(self.now)
        else:
            self.shipped = True
            self._fact(o.OrderShipped(order_id=self.order_id, shipped_at=self.now))
        self._settle(data)

    @precondition(lambda self: self.order_closed and not self.paid)
    @rule(data=st.data())
    def a_late_payment_reaches_the_closed_order(self, data: st.DataObject) -> None:
        self._pay(self.now)
        self._settle(data)

    # ------------------------------------------------------------------ time
    @rule(data=st.data(), wait=st.sampled_from(WAITS))
    def time_passes(self, data: st.DataObject, wait: timedelta) -> None:
        """The clock moves on and every worker's periodic jobs run: deadlines, the payment
        timeout, parked facts, refund and ERP resends."""
        assert self.deps is not None
        self.now += wait
        jobs: list[tuple[str, PeriodicJob[Any]]] = [
            ("scheduler", scheduler_service.ticket_deadlines(self.deps)),
            ("scheduler", scheduler_service.unpaid_orders(self.deps)),
            ("scheduler", scheduler_service.parked_events(self.deps)),
            ("finance", finance_service.resend_due_refunds(self.deps)),
            ("erp_sync", erp_service.resend_due(self.deps)),
        ]
        for worker, job in jobs:
            _, unit_of_work = WORKERS[worker]
            self._run(run_due(partial(unit_of_work, self.db, worker), job))
        self._route()
        self._settle(data)

    # ------------------------------------------------------------------ the rules that hold
    def _check_money_may_leave(self, envelope: Envelope[Any]) -> None:
        """Money leaves only when the goods are stopped or back."""
        if envelope.type != "ExecuteRefund":
            return
        ticket = self.db.state.tickets[envelope.payload.ticket_id]
        if ticket.reason_code == LATE_PAYMENT:
            return  # the order was closed before it was paid: nothing was ever going to ship
        trail = [t for ticket_id, t in self.db.state.audit if ticket_id == ticket.ticket_id]
        refund_only_before_shipment = ticket.type == AfterSalesType.REFUND_ONLY and ticket.before_shipment
        if refund_only_before_shipment and ticket.ticket_id not in self.stopped:
            # the parcel left after all: only a person who saw that may still refund (the buyer
            # keeps the goods or refuses them at the door)
            assert ticket.intercept == InterceptState.ALREADY_DISPATCHED, f"{ticket.ticket_no}: paid, goods not stopped"
            reviews = [t for t in trail if t.from_status == TicketStatus.PENDING_REVIEW != t.to_status]
            assert reviews, f"{ticket.ticket_no}: dispatched, refunded unreviewed"
            assert reviews[-1].actor.role == Role.OPS, f"{ticket.ticket_no}: dispatched, refunded unreviewed"
        if ticket.type == AfterSalesType.RETURN_AND_REFUND and ticket.ticket_id not in self.received:
            # the goods never came (a lost parcel): only ops resolving the intervention may refund
            resolved = [t for t in trail if t.action == "intervention_negotiated" and t.actor.role == Role.OPS]
            assert resolved, f"{ticket.ticket_no}: refund before the goods came back"

    @invariant()
    def refunds_never_exceed_what_was_paid(self) -> None:
        if self.placed is None:
            return
        paid = {ln.line_no: ln.paid.cents for ln in self.placed.lines}
        refunded: dict[int, int] = defaultdict(int)
        shipping = 0
        per_ticket: dict[str, int] = defaultdict(int)
        for refund_id, (ticket_id, cents) in self.channel_paid.items():
            refund = self.db.state.refunds[refund_id]
            assert refund.amount_cents == cents, "the channel paid another amount than finance recorded"
            for line in refund.lines:
                refunded[line.line_no] += line.cents
            shipping += refund.shipping_cents
            per_ticket[ticket_id] += 1
        for line_no, cents in refunded.items():
            assert cents <= paid[line_no], f"line {line_no}: {cents} refunded of {paid[line_no]} paid"
        assert shipping <= self.placed.shipping_fee.cents
        assert all(count == 1 for count in per_ticket.values()), "a ticket was paid twice"

    @invariant()
    def a_unit_is_in_one_active_ticket_at_most(self) -> None:
        held: set[tuple[int, int]] = set()
        for ticket in self._open_tickets():
            for line in ticket.lines:
                for position in line.positions:
                    assert (line.line_no, position) not in held, f"unit {line.line_no}/{position} in two tickets"
                    held.add((line.line_no, position))

    @invariant()
    def the_order_is_closed_when_and_only_when_every_unit_is_refunded(self) -> None:
        if self.placed is None:
            return
        covered: set[tuple[int, int]] = set()
        for ticket in self._tickets():
            if ticket.status == TicketStatus.COMPLETED and ticket.type in MONEY_TYPES:
                for line in ticket.lines:
                    if line.paid_in_full:
                        covered.update((line.line_no, position) for position in line.positions)
        every_unit = {(ln.line_no, position) for ln in self.placed.lines for position in range(ln.quantity)}
        closes = [s.envelope for s in self.db.state.outbox
                  if s.producer == "finance" and s.envelope.type == "CloseOrder"]
        assert len(closes) <= 1, "finance asked twice to close the order"
        assert bool(closes) == (covered >= every_unit), (
            f"close asked: {bool(closes)}, units refunded in full: {sorted(covered)} of {sorted(every_unit)}")

    @invariant()
    def every_open_ticket_waits_on_a_deadline(self) -> None:
        for ticket in self._open_tickets():
            assert ticket.deadline_at is not None, f"{ticket.ticket_no} is {ticket.status} with no deadline"


# WHOLE_ORDER_EXAMPLES=2000 for a long hunt; --hypothesis-show-statistics shows how deep the runs got
WholeOrder.TestCase.settings = settings(max_examples=int(os.environ.get("WHOLE_ORDER_EXAMPLES", "100")),
                                        stateful_step_count=60, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
test_a_whole_order_keeps_its_money_and_goods_rules = WholeOrder.TestCase
