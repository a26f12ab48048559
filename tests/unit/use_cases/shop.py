"""A shop driven through the workers' own use cases on the in-memory fakes: orders arrive,
buyers ask, staff decide, each step as the runtime would run it (one unit of work, committed).

Every step dispatches through the worker's registered routes (``handlers.subscriptions()``),
so a test also proves the message type reaches the use case it should.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from contracts import Contract, Envelope, Money, new_envelope
from contracts import aftersales as c
from contracts import decisions as d
from contracts import orders as o
from contracts.warehouse import InterceptOutcome, InterceptResult
from services.common.routes import Deps, PeriodicJob, Route, Subscription
from services.common.runtime import run_due
from services.common.settings import Settings
from services.dead_letters import handlers as dead_letter_handlers
from services.erp_sync import handlers as erp_handlers
from services.finance import handlers as finance_handlers
from services.intake import handlers as intake_handlers
from services.monitoring import handlers as monitoring_handlers
from services.notifications import handlers as notification_handlers
from services.review import handlers as review_handlers
from services.settlement import handlers as settlement_handlers
from services.warehouse import handlers as warehouse_handlers
from tests.conftest import RETURN_DESK
from tests.unit import fakes

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CHANNEL_KEY = ("channel-test-1", "a secret only these tests and their payment channel know")
CHANNEL_KEYS = json.dumps(dict([CHANNEL_KEY]))

PRODUCER_OF = {"order-system": (o.OrderPlaced, o.OrderPaid, o.OrderShipped, o.OrderCompleted, o.OrderClosed),
               "buyer-frontend": (c.RequestAfterSales, c.WithdrawTicket, c.SubmitReturnShipment,
                                  c.ConfirmExchangeReceived)}


def _routes(subscriptions: list[Subscription[Any]]) -> dict[str, Route[Any, Any]]:
    return {r.type_name: r for sub in subscriptions for r in sub.routes}


WORKERS: dict[str, tuple[dict[str, Route[Any, Any]], Callable[[fakes.FakeDatabase, str], Any]]] = {
    "intake": (_routes(intake_handlers.subscriptions()), fakes.FakeIntakeUnitOfWork),
    "review": (_routes(review_handlers.subscriptions()), fakes.FakeReviewUnitOfWork),
    "finance": (_routes(finance_handlers.subscriptions()), fakes.FakeFinanceUnitOfWork),
    "warehouse": (_routes(warehouse_handlers.subscriptions()), fakes.FakeWarehouseUnitOfWork),
    "erp_sync": (_routes(erp_handlers.subscriptions()), fakes.FakeErpUnitOfWork),
    "dead_letters": (_routes(dead_letter_handlers.subscriptions()), fakes.FakeDeadLetterUnitOfWork),
    "scheduler": ({}, fakes.FakeSchedulerUnitOfWork),
    "monitoring": (_routes(monitoring_handlers.subscriptions()), fakes.FakeMonitoringUnitOfWork),
    "notifications": (_routes(notification_handlers.subscriptions()), fakes.FakeNotificationsUnitOfWork),
    "settlement": (_routes(settlement_handlers.subscriptions()), fakes.FakeSettlementUnitOfWork),
}


class Shop:
    """One fake database shared by every worker (as the one PostgreSQL is today), a clock the
    test moves, and the settings (policies) the test chose."""

    def __init__(self, *, policy: dict[str, Any] | None = None, shop_policies: dict[str, Any] | None = None,
                 **settings: Any) -> None:
        self.now = T0
        self.db = fakes.FakeDatabase(lambda: self.now)
        self.settings = Settings(policy=json.dumps(policy or {}), shop_policies=json.dumps(shop_policies or {}),
                                 **{"payment_signing_keys": CHANNEL_KEYS, "return_addresses": RETURN_DESK,
                                    **settings})
        self.deps = Deps(self.settings, lambda: self.now)
        self.placed: dict[str, o.OrderPlaced] = {}

    def later(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    async def deliver(self, worker: str, payload: Contract, *, key: str, producer: str = "test",
                      cause: Envelope[Any] | None = None) -> Any:
        """One message to one worker's use case, in one committed unit of work."""
        routes, unit_of_work = WORKERS[worker]
        envelope = new_envelope(payload, key=key, producer=producer, cause=cause, occurred_at=self.now)
        async with unit_of_work(self.db, worker) as uow:
            result = await routes[envelope.type].use_case(envelope, uow, self.deps)
            await uow.commit()
        return result

    async def consume(self, worker: str, envelope: Envelope[Any]) -> None:
        """A message as recorded (its own ids and times) to one worker, as its runtime would apply
        it: one committed unit of work."""
        routes, unit_of_work = WORKERS[worker]
        async with unit_of_work(self.db, worker) as uow:
            await routes[envelope.type].use_case(envelope, uow, self.deps)
            await uow.commit()

    async def run(self, worker: str, use_case: Callable[[Any], Awaitable[Any]]) -> Any:
        """Anything else a worker does in a unit of work (a tool, a periodic job's step)."""
        _, unit_of_work = WORKERS[worker]
        async with unit_of_work(self.db, worker) as uow:
            result = await use_case(uow)
            await uow.commit()
        return result

    def sent(self, type_name: str | None = None) -> list[Any]:
        return [e.payload for e in self.db.sent(type_name)]

    def last(self, type_name: str) -> Any:
        found = self.sent(type_name)
        if not found:
            raise AssertionError(f"no {type_name} was sent; sent: {[e.type for e in self.db.sent()]}")
        return found[-1]

    async def tick(self, worker: str, job: PeriodicJob[Any]) -> int:
        """One tick of a worker's periodic job."""
        _, unit_of_work = WORKERS[worker]
        return await run_due(partial(unit_of_work, self.db, worker), job)

    def ticket(self, ticket_id: str) -> Any:
        return self.db.state.tickets[ticket_id]

    # ------------------------------------------------------------ the order system and the buyer
    async def order(self, *, state: str = "SHIPPED", quantity: int = 2, paid: int = 10_000, shipping: int = 800,
                    shop_id: str = "shop-1", coupon: int = 0, points: int = 0, finance_sees_it: bool = True,
                    currency: str = "CNY", subsidy: int = 0, fee: int = 0) -> str:
        order_id = f"O-{uuid.uuid4().hex[:8]}"
        placed = self.now - timedelta(days=1)

        def money(cents: int) -> Money:
            return Money(cents=cents, currency=currency)

        facts: list[Contract] = [o.OrderPlaced(
            order_id=order_id, shop_id=shop_id, buyer_id="buyer-1", placed_at=placed,
            lines=[o.OrderLine(line_no=1, sku="SKU-1", quantity=quantity, unit_price=money(paid // quantity),
                               paid=money(paid), coupon_deduction=money(coupon), points_deduction=money(points))],
            shipping_fee=money(shipping), platform_subsidy=money(subsidy), platform_fee=money(fee))]
        if state != "PENDING_PAYMENT":
            facts.append(o.OrderPaid(order_id=order_id, paid_at=placed + timedelta(minutes=1)))
        if state in ("SHIPPED", "COMPLETED"):
            facts.append(o.OrderShipped(order_id=order_id, shipped_at=placed + timedelta(hours=2)))
        if state == "COMPLETED":
            facts.append(o.OrderCompleted(order_id=order_id, completed_at=placed + timedelta(hours=20)))
        for fact in facts:
            await self.deliver("intake", fact, key=order_id, producer="order-system")
        self.placed[order_id] = facts[0]  # type: ignore[assignment]
        if finance_sees_it:  # finance reads the orders topic on its own: it may lag behind intake
            await self.deliver("finance", facts[0], key=order_id, producer="order-system")
        return order_id

    async def ask(self, order_id: str, type_: str = "REFUND_ONLY", *, quantity: int = 1,
                  reason: str = "NO_LONGER_WANTED", evidence: tuple[str, ...] = (),
                  exchange_for: c.ExchangeVariant | None = None) -> str:
        """A buyer request; returns the ticket id it opened (fails the test if it opened none)."""
        request = c.RequestAfterSales(
            request_id=uuid.uuid4(), order_id=order_id, buyer_id="buyer-1", type=c.AfterSalesType(type_),
            lines=[c.RequestedLine(line_no=1, quantity=quantity, exchange_for=exchange_for)], reason_code=reason,
            evidence=list(evidence))
        outcome = await self.deliver("intake", request, key=order_id, producer="buyer-frontend")
        assert outcome == "opened", outcome
        return str(self.last("TicketOpened").ticket.ticket_id)

    async def decide(self, decision: type[d.Decision], ticket_id: str, role: str, who: str, **fields: Any) -> None:
        ticket = self.ticket(ticket_id)
        await self.deliver("review", decision(ticket_id=ticket_id, order_id=ticket.order_id,
                                              actor=c.Actor(role=c.Role(role), id=who), **fields),
                           key=ticket.order_id, producer="back-office")

    async def review_sees_it_opened(self, ticket_id: str) -> None:
        """Review consumes the TicketOpened intake announced for this ticket."""
        (opened,) = [e for e in self.db.sent("TicketOpened") if e.payload.ticket.ticket_id == ticket_id]
        await self.deliver("review", opened.payload, key=opened.key, cause=opened)

    async def intercept_answer(self, ticket_id: str, *, intercepted: bool) -> None:
        """The WMS answers the InterceptShipment review sent for this ticket."""
        outcome = InterceptOutcome.INTERCEPTED if intercepted else InterceptOutcome.ALREADY_DISPATCHED
        order_id = self.ticket(ticket_id).order_id
        await self.deliver("review", InterceptResult(ticket_id=ticket_id, order_id=order_id, outcome=outcome,
                                                     decided_at=self.now), key=order_id, producer="wms")

    async def tell_finance_of_last_transition(self) -> None:
        """What finance would consume next on the tickets topic."""
        changed = self.db.sent("TicketStatusChanged")[-1]
        await self.deliver("finance", changed.payload, key=changed.key, cause=changed)
