"""The people and systems around the after-sales services, as code: the order system publishing
orders, a buyer sending requests, ops/finance/manager deciding. Used by the demo and e2e tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import Envelope, Money
from contracts import aftersales as c
from contracts import decisions as d
from contracts import orders as o
from services.common.bus import Bus, Watcher

# the shops' return desk in the demo, chaos and fuzz runs (AFTERSALES_RETURN_ADDRESSES)
RETURN_DESK = json.dumps({"*": {"recipient": "Returns desk", "phone": "400-820-0000",
                                "address": "No. 8 Logistics Park, Hangzhou",
                                "instructions": "Original box, all accessories"}})


def order_id() -> str:
    return f"O{uuid.uuid4().hex[:12]}"


@dataclass
class Line:
    sku: str
    quantity: int
    unit_price_cents: int
    paid_cents: int
    coupon_cents: int = 0
    points_cents: int = 0
    category: str = "general"


class World:
    """Drives orders, buyers and staff over the real topics, and watches the answers."""

    def __init__(self, bus: Bus, watcher: Watcher,
                 order_state: Callable[[str], Awaitable[str | None]] | None = None) -> None:
        """``order_state`` reads intake's projection, so a scripted buyer acts only once intake
        knows the order as the order system published it (as a real buyer would, minutes later)."""
        self.bus = bus
        self.watcher = watcher
        self.order_state = order_state
        self._seen_tickets: set[str] = set()
        self.orders: list[str] = []  # every order this world placed (a rebuild compares them)
        # orders whose outcome a resend raced against an outside system's answer: a rebuild handles
        # each input at the time it was written, live it was handled when it was read (a few hops
        # later, or after an outage), so the race may end the other way (see README, "Replay")
        self.timing_races: set[str] = set()
        self._seen_rejections: set[Any] = set()

    async def place_order(self, lines: list[Line], *, shop: str = "shop-1", buyer: str = "buyer-1",
                          shipping_cents: int = 0, state: str = "PAID",
                          placed_at: datetime | None = None, oid: str | None = None,
                          completed_at: datetime | None = None) -> str:
        """Publishes OrderPlaced and the facts up to ``state`` (PENDING_PAYMENT … COMPLETED)."""
        oid = oid or order_id()
        self.orders.append(oid)
        now = datetime.now(UTC)
        placed = placed_at or now - timedelta(minutes=5)
        await self.bus.publish(o.OrderPlaced(
            order_id=oid, shop_id=shop, buyer_id=buyer, placed_at=placed,
            lines=[o.OrderLine(line_no=i, sku=ln.sku, category=ln.category, quantity=ln.quantity,
                               unit_price=Money.cny(ln.unit_price_cents), paid=Money.cny(ln.paid_cents),
                               coupon_deduction=Money.cny(ln.coupon_cents),
                               points_deduction=Money.cny(ln.points_cents))
                   for i, ln in enumerate(lines, start=1)],
            shipping_fee=Money.cny(shipping_cents), platform_subsidy=Money.cny(0),
            platform_fee=Money.cny(sum(ln.paid_cents for ln in lines) // 50)), key=oid)
        steps = ["PAID", "SHIPPED", "COMPLETED"]
        if state != "PENDING_PAYMENT":
            await self.bus.publish(o.OrderPaid(order_id=oid, paid_at=placed + timedelta(minutes=1)), key=oid)
        if state in steps[1:]:
            await self.bus.publish(o.OrderShipped(order_id=oid, shipped_at=placed + timedelta(hours=5)), key=oid)
        if state == "COMPLETED":
            await self.bus.publish(o.OrderCompleted(order_id=oid, completed_at=completed_at or now), key=oid)
        await self.projected(oid, state)
        return oid

    async def projected(self, oid: str, state: str, timeout: float = 30.0) -> None:
        if self.order_state is None:
            return
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.order_state(oid) != state:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"intake did not project order {oid} as {state}")
            await asyncio.sleep(0.05)

    async def request(self, oid: str, type_: str, lines: list[tuple[int, int]], *, reason: str = "NO_LONGER_WANTED",
                      buyer: str = "buyer-1", evidence: list[str] | None = None,
                      description: str = "", request_id: uuid.UUID | None = None,
                      variants: dict[int, tuple[str, int]] | None = None) -> Envelope[Any]:
        """``variants``: line → (sku, list price in cents) an exchange ships instead."""
        chosen = {n: c.ExchangeVariant(sku=sku, unit_price=Money.cny(cents))
                  for n, (sku, cents) in (variants or {}).items()}
        return await self.bus.publish(c.RequestAfterSales(
            request_id=request_id or uuid.uuid4(), order_id=oid, buyer_id=buyer, type=c.AfterSalesType(type_),
            lines=[c.RequestedLine(line_no=n, quantity=q, exchange_for=chosen.get(n)) for n, q in lines],
            reason_code=reason,
            evidence=evidence or [], description=description), key=oid)

    async def quote(self, oid: str, type_: str, lines: list[tuple[int, int]], *, reason: str | None = None,
                    buyer: str = "buyer-1", timeout: float = 30.0) -> Envelope[Any]:
        """Asks what a request would refund; the AfterSalesQuoted, or the RequestRejected saying why."""
        request_id = uuid.uuid4()
        await self.bus.publish(c.QuoteAfterSales(
            request_id=request_id, order_id=oid, buyer_id=buyer, type=c.AfterSalesType(type_),
            lines=[c.RequestedLine(line_no=n, quantity=q) for n, q in lines], reason_code=reason), key=oid)
        return await self.watcher.wait_for(
            oid, lambda e: e.type in ("AfterSalesQuoted", "RequestRejected")
            and getattr(e.payload, "request_id", None) == request_id, timeout)

    async def opened(self, oid: str, timeout: float = 30.0) -> c.TicketView:
        """The ticket opened for the order (the first one not yet returned by this call)."""
        seen = self._seen_tickets
        env = await self.watcher.wait_for(
            oid, lambda e: e.type == "TicketOpened" and e.payload.ticket.ticket_id not in seen, timeout)
        ticket: c.TicketView = env.payload.ticket
        seen.add(ticket.ticket_id)
        return ticket

    async def rejected(self, oid: str, timeout: float = 30.0) -> Envelope[Any]:
        """The next rejection for the order not yet returned by this call."""
        seen = self._seen_rejections
        env = await self.watcher.wait_for(
            oid, lambda e: e.type in ("RequestRejected", "CommandRejected") and e.event_id not in seen, timeout)
        seen.add(env.event_id)
        return env

    async def decide(self, message: type[d.Decision], ticket: c.TicketView, role: str, actor_id: str,
                     **fields: Any) -> Envelope[Any]:
        return await self.bus.publish(message(
            ticket_id=ticket.ticket_id, order_id=ticket.order_id,
            actor=c.Actor(role=c.Role(role), id=actor_id), **fields), key=ticket.order_id)

    async def buyer(self, message: Any) -> Envelope[Any]:
        return await self.bus.publish(message, key=message.order_id)

    async def ship_back(self, ticket: c.TicketView, carrier: str = "SF", waybill: str | None = None,
                        buyer: str = "buyer-1") -> Envelope[Any]:
        """The buyer ships the goods back once they see the approval (AWAITING_RETURN)."""
        await self.status(ticket, "AWAITING_RETURN")
        return await self.buyer(c.SubmitReturnShipment(
            ticket_id=ticket.ticket_id, order_id=ticket.order_id, buyer_id=buyer, carrier=carrier,
            waybill=waybill or f"{carrier}{uuid.uuid4().int % 10**10:010d}"))

    async def status(self, ticket: c.TicketView, status: str, timeout: float = 30.0, nth: int = 1) -> Envelope[Any]:
        """Waits until the ticket has entered ``status`` for the ``nth`` time."""
        def entered(e: Envelope[Any]) -> bool:
            if e.type != "TicketStatusChanged" or e.payload.ticket.ticket_id != ticket.ticket_id:
                return False
            if not e.payload.enters(status):
                return False
            earlier = [m for m in self.watcher.messages(ticket.order_id, "TicketStatusChanged")
                       if m.payload.ticket.ticket_id == ticket.ticket_id and m.payload.enters(status)]
            return len(earlier) >= nth
        return await self.watcher.wait_for(ticket.order_id, entered, timeout)

    def messages_of(self, oid: str, type_name: str) -> list[Envelope[Any]]:
        return self.watcher.messages(oid, type_name)

    def journey(self, ticket: c.TicketView) -> list[str]:
        steps = []
        for env in self.watcher.messages(ticket.order_id, "TicketStatusChanged"):
            ev = env.payload
            if ev.ticket.ticket_id != ticket.ticket_id:
                continue
            amount = f" [{ev.amount_after.cents / 100:.2f} CNY]" if ev.amount_after else ""
            steps.append(f"{ev.from_status} -> {ev.to_status} by {ev.actor.role.value}:{ev.actor.id}"
                         f"{' — ' + ev.reason if ev.reason else ''}{amount}")
        return steps


def projection_probe(sessions: Any) -> Callable[[str], Awaitable[str | None]]:
    """Reads an order's state from intake's projection."""
    from services.common.tables import OrderRow

    async def state(oid: str) -> str | None:
        async with sessions() as session:
            row = await session.get(OrderRow, oid)
            return row.state if row else None
    return state
