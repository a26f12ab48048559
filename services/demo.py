"""The main job: starts every worker as its own process, drives realistic orders and tickets
through every after-sales flow over the real Kafka/PostgreSQL/Redis, prints each ticket's
journey and a summary, then stops the workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from contracts import aftersales as c
from contracts import decisions as d
from contracts import orders as o
from contracts.topics import CATALOGUE
from services.actors import RETURN_DESK, Line, World, projection_probe
from services.backoffice import service as back_office
from services.backoffice.repository import SqlBackOfficeUnitOfWork
from services.backoffice.staff import StaffRole
from services.common.bus import Bus, Watcher
from services.common.db import make_engine, make_session_factory
from services.common.procs import ALL_WORKERS, PRINCIPAL, WorkerProcesses
from services.common.settings import Settings
from services.common.tables import PaymentChannelRefund
from services.domain.figures import per_mille_text
from services.simulators.scenarios import set_scenario

DEMO_ENV = {
    "AFTERSALES_RETURN_ADDRESSES": RETURN_DESK,
    "AFTERSALES_SHOP_POLICIES": json.dumps({
        "shop-erp": {"has_erp": True},
        "shop-fast": {"finance_auto_approve_refund_only": True},
    }),
    "AFTERSALES_REFUND_RETRY_BASE_SECONDS": "1",
    "AFTERSALES_ERP_RETRY_BASE_SECONDS": "1",
    "AFTERSALES_SCHEDULER_TICK_SECONDS": "0.5",
    "AFTERSALES_LOG_LEVEL": "WARNING",
}

PHONE = Line("SKU-PHONE-128G", 1, 399_900, 379_900, coupon_cents=20_000)
CASE = Line("SKU-CASE-BLK", 3, 3_900, 10_000)
SOCKS = Line("SKU-SOCKS-5P", 2, 2_990, 5_000)
KETTLE = Line("SKU-KETTLE-1L7", 1, 19_900, 17_900)
LAPTOP = Line("SKU-LAPTOP-14", 1, 899_900, 869_900)
PHOTO = ["oss://evidence/photo-1.jpg"]


DEMO_SHOPS = ["shop-1", "shop-fast", "shop-erp"]
FINAL_NOTICES = {"REFUNDED", "COMPLETED", "CLOSED", "REJECTED"}  # what the buyer hears when a ticket ends
DEMO_USERS = {role: (f"{role.value}-demo", f"{role.value}-demo-password") for role in StaffRole}


async def demo_users(settings: Settings) -> None:
    """One back-office account per role for the demo shops (kept if it exists already)."""
    engine = make_engine(settings)
    try:
        for role, (username, password) in DEMO_USERS.items():
            async with SqlBackOfficeUnitOfWork(make_session_factory(engine), "back-office") as uow:
                if await uow.staff.by_username(username) is None:
                    await back_office.add_user(uow, username, password, role, DEMO_SHOPS)
    finally:
        await engine.dispose()


class Desk:
    """A person at the back office, over HTTP as anyone would be: signs in, decides, and waits
    for the worker's answer to each decision."""

    def __init__(self, client: httpx.AsyncClient, role: StaffRole) -> None:
        self.client, self.role = client, role
        self.headers: dict[str, str] = {}

    async def sign_in(self) -> Desk:
        username, password = DEMO_USERS[self.role]
        answer = await self.client.post("/api/session", json={"username": username, "password": password})
        answer.raise_for_status()
        self.headers = {"authorization": f"Bearer {answer.json()['token']}"}
        return self

    async def decide(self, ticket: c.TicketView, action: str, **body: Any) -> str:
        accepted = await self.client.post(f"/api/tickets/{ticket.ticket_id}/{action}", json=body,
                                          headers=self.headers)
        accepted.raise_for_status()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            decision = (await self.client.get(accepted.json()["outcome_at"], headers=self.headers)).json()
            if decision["outcome"] != "ACCEPTED":
                if decision["outcome"] != "APPLIED":
                    raise RuntimeError(f"{action} refused: {decision['outcome_message']}")
                return str(decision["outcome_code"])
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no answer to {action} in 30 s")


def yuan(cents: int) -> str:
    return f"¥{cents / 100:,.2f}"


async def cancel_unpaid(w: World) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([SOCKS], state="PENDING_PAYMENT")
    await w.request(oid, "CANCEL", [], reason="NO_LONGER_WANTED")
    t = await w.opened(oid)
    await w.watcher.wait_for(oid, lambda e: e.type == "OrderClosed")
    return "Cancel an unpaid order (order system closes it)", t, "COMPLETED"


async def instant_refund(w: World) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([CASE, SOCKS], shop="shop-fast", shipping_cents=800)
    await w.request(oid, "REFUND_ONLY", [(1, 3), (2, 2)])
    t = await w.opened(oid)
    await w.status(t, "COMPLETED")
    await w.watcher.wait_for(oid, lambda e: e.type == "OrderClosed")
    return "Refund only within 30 min of payment: intercept, auto-approve, shipping refunded", t, "COMPLETED"


async def two_step_refund(w: World, office: httpx.AsyncClient) -> tuple[str, c.TicketView, str]:
    """Ops and finance work through the back office (signed in; the actor is who signed in)."""
    ops, finance = await Desk(office, StaffRole.OPS).sign_in(), await Desk(office, StaffRole.FINANCE).sign_in()
    oid = await w.place_order([KETTLE], state="SHIPPED")
    await w.request(oid, "REFUND_ONLY", [(1, 1)], reason="DAMAGED_IN_TRANSIT", evidence=PHOTO)
    t = await w.opened(oid)
    await ops.decide(t, "refund-amount", lines=[{"line_no": 1, "refund_cents": 15_000}],
                     reason="buyer keeps the kettle; 150 agreed by phone")
    await ops.decide(t, "approve")
    await finance.decide(t, "send-back", reason="attach the phone-call note")
    await ops.decide(t, "approve", note="call note attached")
    await finance.decide(t, "finance-approval")
    await w.status(t, "COMPLETED")
    return ("Refund after shipment, decided in the back office over HTTP: amount lowered, finance sends back, "
            "ops re-approves"), t, "COMPLETED"


async def reissue(w: World, office: httpx.AsyncClient) -> tuple[str, c.TicketView, str]:
    """补发 (seed 000): the buyer says a pair of socks was missing; ops sends it again from the back
    office instead of refunding it, and the buyer confirms the new parcel."""
    ops = await Desk(office, StaffRole.OPS).sign_in()
    oid = await w.place_order([SOCKS], shop="shop-erp", state="SHIPPED")
    await w.request(oid, "REFUND_ONLY", [(1, 1)], reason="MISSING_ITEM", evidence=PHOTO)
    t = await w.opened(oid)
    await ops.decide(t, "reissue", note="one pack missing from the parcel")
    await w.status(t, "RESHIPPED")
    await w.buyer(c.ConfirmExchangeReceived(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1"))
    await w.status(t, "COMPLETED")
    return "Missing item sent again (补发) from the back office instead of refunded; buyer confirms", t, "COMPLETED"


async def refused_delivery(w: World) -> tuple[str, c.TicketView, str]:
    """拒收 (seed 003): refund-only after shipment; the buyer refuses the parcel at the door."""
    oid = await w.place_order([KETTLE], shop="shop-fast", state="SHIPPED")
    await w.request(oid, "REFUND_ONLY", [(1, 1)])
    t = await w.opened(oid)
    await w.buyer(c.RefuseDelivery(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1", carrier="SF",
                                   waybill="SF-REFUSED-1"))
    await w.status(t, "COMPLETED")
    return ("Parcel refused at the door (拒收): the carrier's return is the receipt, then the refund is paid", t,
            "COMPLETED")


async def large_amount(w: World) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([LAPTOP], state="SHIPPED")
    await w.request(oid, "REFUND_ONLY", [(1, 1)], reason="WRONG_SPEC_CHOSEN")
    t = await w.opened(oid)
    await w.decide(d.ApproveTicket, t, "ops", "ops-zhao")
    await w.status(t, "PENDING_MANAGER")
    await w.decide(d.ApproveLargeRefund, t, "manager", "mgr-chen")
    await w.status(t, "PENDING_REFUND")
    await w.decide(d.ApproveRefund, t, "finance", "fin-wang")
    await w.status(t, "COMPLETED")
    return "Large amount: manager approves between ops and finance", t, "COMPLETED"


async def return_with_erp(w: World) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([CASE], shop="shop-erp", state="COMPLETED")
    quoted = (await w.quote(oid, "RETURN_AND_REFUND", [(1, 2)], reason="NO_LONGER_WANTED")).payload
    await w.request(oid, "RETURN_AND_REFUND", [(1, 2)], reason="NO_LONGER_WANTED")
    t = await w.opened(oid)
    if t.refund_total.cents != quoted.total.cents:
        raise RuntimeError(f"quoted {quoted.total.cents} but the ticket opened with {t.refund_total.cents}")
    await w.decide(d.ApproveTicket, t, "ops", "ops-li")
    await w.status(t, "AWAITING_RETURN")
    await w.watcher.wait_for(oid, lambda e: e.type == "ErpOrderAcknowledged")
    await w.ship_back(t, "ZTO", "ZT7788990011")
    await w.status(t, "PENDING_REFUND")
    await w.decide(d.ApproveRefund, t, "finance", "fin-wang")
    await w.status(t, "COMPLETED")
    return (f"Return and refund, merchant with ERP: quoted {yuan(quoted.total.cents)} before asking "
            f"({yuan(quoted.not_refunded.cents)} of promotion not refunded), opened with that; receipt order "
            "acknowledged"), t, "COMPLETED"


async def return_mismatch(w: World, redis: Redis) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([KETTLE], state="COMPLETED")
    await set_scenario(redis, "wms", oid, "DAMAGED_BY_BUYER")
    await w.request(oid, "RETURN_AND_REFUND", [(1, 1)], reason="QUALITY_PROBLEM", evidence=PHOTO)
    t = await w.opened(oid)
    await w.decide(d.ApproveTicket, t, "ops", "ops-li")
    await w.ship_back(t, "YTO", "YT1234567")
    await w.status(t, "INTERVENTION")
    await w.decide(d.ResolveIntervention, t, "ops", "ops-zhao", outcome=d.InterventionOutcome.NEGOTIATED,
                   lines=[d.LineAmount(line_no=1, refund_cents=9_000)], note="scratched lid; 90 agreed")
    await w.status(t, "PENDING_REFUND")
    await w.decide(d.ApproveRefund, t, "finance", "fin-wang")
    await w.status(t, "COMPLETED")
    return "Return with inspection mismatch: intervention, negotiated amount", t, "COMPLETED"


async def exchange(w: World) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([SOCKS], shop="shop-erp", state="COMPLETED")
    # the wrong size was chosen (选错型号): the same socks in L, at the same list price
    await w.request(oid, "EXCHANGE", [(1, 1)], reason="WRONG_SPEC_CHOSEN",
                    variants={1: ("SKU-SOCKS-5P-L", SOCKS.unit_price_cents)})
    t = await w.opened(oid)
    await w.decide(d.ApproveTicket, t, "ops", "ops-li")
    await w.ship_back(t, "SF", "SF55511122")
    await w.status(t, "RESHIPPED")
    await w.buyer(c.ConfirmExchangeReceived(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1"))
    await w.status(t, "COMPLETED")
    return ("Exchange to another size: return of SKU-SOCKS-5P, inspection, SKU-SOCKS-5P-L shipped, buyer confirms",
            t, "COMPLETED")


async def repair(w: World) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([KETTLE], state="COMPLETED")
    await w.request(oid, "REPAIR", [(1, 1)], reason="QUALITY_PROBLEM", evidence=PHOTO)
    t = await w.opened(oid)
    await w.decide(d.ApproveTicket, t, "ops", "ops-li")
    await w.ship_back(t, "SF", "SF99900011")
    await w.status(t, "RESHIPPED")
    await w.buyer(c.ConfirmExchangeReceived(ticket_id=t.ticket_id, order_id=oid, buyer_id="buyer-1"))
    await w.status(t, "COMPLETED")
    return "Repair: return, repair, ship back, buyer confirms", t, "COMPLETED"


async def channel_timeout(w: World, redis: Redis) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([PHONE], shop="shop-fast", state="SHIPPED")
    await set_scenario(redis, "payment", oid, "timeout_once")
    await w.request(oid, "REFUND_ONLY", [(1, 1)], reason="NOT_AS_DESCRIBED")
    t = await w.opened(oid)
    await w.decide(d.SetRefundFlags, t, "ops", "ops-li", refund_coupon=True)
    await w.decide(d.ApproveTicket, t, "ops", "ops-li")
    await w.status(t, "COMPLETED", timeout=60)
    await w.watcher.wait_for(oid, lambda e: e.type == "CompensationAcknowledged")
    return "Payment channel loses its first answer: resent with the same refund id", t, "COMPLETED"


async def intercept_fails(w: World, redis: Redis) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([SOCKS], shop="shop-fast")
    await set_scenario(redis, "wms", oid, "already_dispatched")
    await w.request(oid, "REFUND_ONLY", [(1, 2)])
    t = await w.opened(oid)
    await w.status(t, "PENDING_REFUND")  # approved at once (30-minute rule), money held for the intercept
    await w.status(t, "PENDING_REVIEW")  # the parcel already left: back to a person, no money sent
    await w.decide(d.RejectTicket, t, "ops", "ops-li", reason="parcel on its way: refuse delivery to get a refund")
    await w.status(t, "CLOSED")
    return "Refund only whose parcel had already left: held, back to review, rejected; no cent moved", t, "CLOSED"


async def late_payment(w: World) -> tuple[str, c.TicketView, str]:
    oid = await w.place_order([SOCKS], state="PENDING_PAYMENT", shipping_cents=600)
    await w.bus.publish(o.OrderClosed(order_id=oid, closed_at=datetime.now(UTC), reason="payment timed out"), key=oid)
    await w.projected(oid, "CLOSED")
    await w.bus.publish(o.OrderPaid(order_id=oid, paid_at=datetime.now(UTC)), key=oid)
    t = await w.opened(oid)
    await w.status(t, "COMPLETED")
    return "Payment after the order closed: a LATE_PAYMENT system ticket refunds all of it, ops alerted", t, \
        "COMPLETED"


async def refused(w: World) -> list[str]:
    lines = []
    oid = await w.place_order([KETTLE], state="COMPLETED", completed_at=datetime.now(UTC) - timedelta(days=10))
    await w.request(oid, "RETURN_AND_REFUND", [(1, 1)])
    lines.append(_rejection(await w.rejected(oid)))
    oid = await w.place_order([CASE], state="SHIPPED")
    await w.request(oid, "RETURN_AND_REFUND", [(1, 1)], reason="QUALITY_PROBLEM")
    lines.append(_rejection(await w.rejected(oid)))
    await w.request(oid, "REFUND_ONLY", [(1, 3)])
    await w.opened(oid)
    await w.request(oid, "RETURN_AND_REFUND", [(1, 1)])
    lines.append(_rejection(await w.rejected(oid)))
    await w.bus.send_raw("aftersales.requests", b'{"type": "RequestAfterSales", "payload": ', key=oid)
    dlq = await w.watcher.wait_for(oid, lambda e: e.type == "DeadLetter")
    lines.append(f"malformed message -> aftersales.dlq: {dlq.payload.error_class}: {dlq.payload.reason}")
    return lines


def _rejection(env: Any) -> str:
    return f"{env.payload.code}: {env.payload.message}"


async def main(settings: Settings, stay: bool = False) -> int:
    from services.common.kafka import ensure_topics

    started = time.monotonic()
    await ensure_topics(settings)
    await demo_users(settings)
    everyone = (*ALL_WORKERS, "backoffice")
    procs = WorkerProcesses(everyone, Path(".local/logs/demo"),
                            env={**DEMO_ENV, "AFTERSALES_BACKOFFICE_COOKIE_SECURE": "false"}, metrics=True)
    procs.start()
    address = f"http://{settings.backoffice_host}:{settings.backoffice_port}"
    print(f"started {len(everyone)} processes: {', '.join(everyone)} (logs in .local/logs/demo)")
    office = httpx.AsyncClient(base_url=address, timeout=10)
    redis = Redis.from_url(settings.redis_url)
    engine = make_engine(settings)
    try:
        async with Bus(settings, "demo") as bus, Watcher(settings, [t.name for t in CATALOGUE]) as watcher:
            world = World(bus, watcher, projection_probe(make_session_factory(engine)))
            await _serving(office)
            await procs.ready()  # every process consumes before the first flow starts
            flows: list[Callable[[], Awaitable[tuple[str, c.TicketView, str]]]] = [
                lambda: cancel_unpaid(world), lambda: instant_refund(world), lambda: two_step_refund(world, office),
                lambda: large_amount(world), lambda: return_with_erp(world),
                lambda: return_mismatch(world, redis), lambda: exchange(world), lambda: repair(world),
                lambda: channel_timeout(world, redis), lambda: intercept_fails(world, redis),
                lambda: late_payment(world), lambda: reissue(world, office), lambda: refused_delivery(world)]
            results = await asyncio.gather(*(asyncio.wait_for(f(), 120) for f in flows),
                                           asyncio.wait_for(refused(world), 60), return_exceptions=True)
            ok = 0
            for result in results[:-1]:
                if isinstance(result, BaseException):
                    print(f"\n✗ flow failed: {type(result).__name__}: {result}")
                    continue
                title, ticket, _ = cast(tuple[str, c.TicketView, str], result)
                ok += 1
                print(f"\n✓ {title}\n  ticket {ticket.ticket_no} ({ticket.type.value}), order {ticket.order_id}, "
                      f"refund cap {yuan(ticket.refund_total.cents)}")
                for step in world.journey(ticket):
                    print(f"    {step}")
            print("\nRefused requests and bad input:")
            refusals = results[-1]
            if isinstance(refusals, BaseException):
                print(f"  ✗ {type(refusals).__name__}: {refusals}")
            else:
                for line in refusals:
                    print(f"  - {line}")
            paid = {e.payload.refund_id: e.payload.amount.cents
                    for msgs in watcher.by_key.values() for _, e in msgs if e.type == "RefundSucceeded"}
            for result in results[:-1]:  # each finished ticket's last notice follows its last move by a hop
                if not isinstance(result, BaseException):
                    done = cast(tuple[str, c.TicketView, str], result)[1]
                    await watcher.wait_for(done.order_id, partial(_told_the_end, done.ticket_id), timeout=15)
            told: dict[str, int] = {}
            for msgs in watcher.by_key.values():
                for _, e in msgs:
                    if e.type == "BuyerNotification":
                        told[str(e.payload.template)] = told.get(str(e.payload.template), 0) + 1
            print(f"\nBuyers were told (buyer.notifications): {sum(told.values())} notices: "
                  + ", ".join(f"{template} {n}" for template, n in sorted(told.items())))
            adjustments = [e.event_id for msgs in watcher.by_key.values() for _, e in msgs
                           if e.type == "SettlementAdjusted"]
        async with make_session_factory(engine)() as session:
            channel = (await session.execute(select(PaymentChannelRefund).where(
                PaymentChannelRefund.refund_id.in_(list(paid))))).scalars().all()
        requests = max((r.executions for r in channel), default=0)
        print(f"\nSummary: {ok}/{len(results) - 1} flows completed, "
              f"{'refusals ok' if not isinstance(results[-1], BaseException) else 'refusals FAILED'}; "
              f"{len(paid)} refunds paid, {yuan(sum(paid.values()))} in total, each refund id paid once by the "
              f"channel ({len(channel)} channel records; up to {requests} requests for one id); "
              f"{time.monotonic() - started:.1f} s")
        opened = sum(1 for r in results[:-1] if not isinstance(r, BaseException))
        for line in await monitoring_summary(office, opened):
            print(line)
        for line in await settlement_summary(make_session_factory(engine), settings, adjustments):
            print(line)
        for line in await replay_summary(settings, world.orders, [PRINCIPAL.get(w, w) for w in everyone]):
            print(line)
        print(f"\nBack office: {address} (the tickets above are in shops {', '.join(DEMO_SHOPS)}); "
              f"dashboard {address}/dashboard, work items {address}/work-items")
        for role, (username, password) in DEMO_USERS.items():
            print(f"  {role.value:<9} {username} / {password}")
        print("Each process serves /metrics, /healthz and /readyz on its own port: "
              + ", ".join(f"{name} :{port}" for name, port in list(procs.metrics_ports.items())[:4]) + ", …")
        dead = procs.dead()
        if dead:
            print(f"workers that died: {dead}")
        if stay and not dead:
            print("everything keeps running until Ctrl-C (aftersales demo --stay)")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return 0 if ok == len(results) - 1 and not isinstance(results[-1], BaseException) and not dead else 1
    finally:
        procs.stop()
        await office.aclose()
        await redis.aclose()
        await engine.dispose()


async def monitoring_summary(office: httpx.AsyncClient, tickets: int, timeout: float = 30) -> list[str]:
    """What the monitoring worker counted, read from the back office's dashboard as an admin sees
    it (every demo shop, and what belongs to no shop); waits until it has counted the flows."""
    admin = await Desk(office, StaffRole.ADMIN).sign_in()
    deadline = time.monotonic() + timeout
    while True:
        found = (await office.get("/api/dashboard", headers=admin.headers)).json()
        if found["tickets_opened"] >= tickets or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    items = (await office.get("/api/work-items", headers=admin.headers)).json()
    rate = found["rate"]["per_mille"]
    reasons = ", ".join(f"{r['key']} {r['value']}" for r in found["reasons"][:4])
    states = ", ".join(f"{t['status']} p50 {t['p50_seconds']:.1f}s / p95 {t['p95_seconds']:.1f}s"
                       for t in sorted(found["time_in_state"], key=lambda t: -t["p95_seconds"])[:3])
    owners: dict[str, int] = {}
    for item in items:
        owners[item["owner"]] = owners.get(item["owner"], 0) + 1
    return [
        f"\nMonitoring, the demo shops from {found['first_day']} to {found['last_day']} (reporting days; earlier "
        "runs on this database count too):",
        f"  {found['tickets_opened']} tickets opened; after-sales rate "
        f"{per_mille_text(rate)} ({found['rate']['in_tickets']} of "
        f"{found['rate']['sold']} units sold)",
        f"  refunded {', '.join(yuan(a['cents']) for a in found['refunded']) or 'nothing'} in "
        f"{found['refunds_completed']} refunds ({found['refunds_failed']} failed, {found['refunds_retried']} retried)",
        f"  top reasons: {reasons or 'none'}",
        f"  longest waits: {states or 'none yet'}",
        f"  SLA breaches {sum(c['value'] for c in found['sla_breaches'])}, integration errors "
        f"{sum(c['value'] for c in found['integration_errors'])}, dead letters "
        f"{sum(c['value'] for c in found['dead_letters'])}",
        f"  open work items: {len(items)} ({', '.join(f'{o} {n}' for o, n in sorted(owners.items())) or 'none'})",
    ]


async def settlement_summary(sessions: Any, settings: Settings, adjustments: list[Any],
                             timeout: float = 30) -> list[str]:
    """Today's settlement statement of each demo shop, once the settlement worker has recorded
    every refund finance settled in the flows (``aftersales settlement statement`` prints the same)."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import func

    from services.common.routes import Deps
    from services.common.tables import SettlementEntryRow
    from services.domain.figures import money_text
    from services.domain.settlement import CyclePeriod
    from services.settlement import service as settlement
    from services.settlement.repository import SqlSettlementUnitOfWork

    deadline = time.monotonic() + timeout
    while True:
        async with sessions() as session:
            recorded = (await session.execute(select(func.count()).select_from(SettlementEntryRow).where(
                SettlementEntryRow.entry_id.in_(adjustments)))).scalar_one()
        if recorded >= len(adjustments) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    out = [f"\nSettlement ({recorded} of the {len(adjustments)} refunds settled in the flows recorded), today's "
           "statements (aftersales settlement statement --shop S):"]
    today = datetime.now(UTC).astimezone(ZoneInfo(settings.reporting_timezone)).date()
    for shop in DEMO_SHOPS:
        period = CyclePeriod.containing(settings.policy_for(shop).settlement_cycle, today)
        async with SqlSettlementUnitOfWork(sessions, "settlement") as uow:
            found = await settlement.statement(uow, Deps(settings), shop, period)
        kinds: dict[str, int] = {}
        for entry in found.entries:
            kinds[entry.kind.value] = kinds.get(entry.kind.value, 0) + 1
        totals = "; ".join(f"net {money_text(t.net_cents, t.currency)} (paid {money_text(t.paid_cents, t.currency)},"
                           f" subsidy {money_text(t.subsidy_cents, t.currency)}, fee "
                           f"{money_text(t.fee_cents, t.currency)}, given back "
                           f"{money_text(t.refunded_cents, t.currency)})" for t in found.totals) or "nothing entered"
        out.append(f"  {shop} {period.label}, payable {found.payable_on.isoformat()}: "
                   f"{', '.join(f'{k} {n}' for k, n in sorted(kinds.items())) or 'no lines'}; {totals}; "
                   f"{len(found.held)} order(s) held back")
    return out


async def replay_summary(settings: Settings, orders: list[str], workers: list[str]) -> list[str]:
    """The demo's orders rebuilt from the Kafka log alone and compared with the live database, then
    replayed with a 15-day after-sales window (each command in a process of its own, with the
    workers' settings, as ops would run it): the refused request of the kettle, completed ten days
    ago, would have opened a ticket."""
    from zoneinfo import ZoneInfo

    from services.harness import quiet
    from services.replay.rebuild import scratch_database

    lines = ["\nReplay (the demo's orders from the Kafka log alone; see README, 'Replay'):"]
    if not await quiet(settings, workers, 120):
        return [*lines, "  ✗ the workers did not finish their work in 120 s: nothing to compare with yet"]
    env = {**os.environ, **DEMO_ENV}
    by_order = [arg for order in orders for arg in ("--order", order)]
    async with scratch_database(settings, "demo") as url:
        rebuilt = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "services.cli", "rebuild", "--into", url, "--compare", *by_order],
            capture_output=True, text=True, env=env, timeout=600)
    lines.append(f"  $ aftersales rebuild --into <empty database> --compare --order … ({len(orders)} orders)")
    lines += [f"    {line}" for line in rebuilt.stdout.splitlines() if line.strip() and "━" not in line]
    policy = Path(".local/demo-whatif-policy.json")
    await asyncio.to_thread(policy.write_text, json.dumps({"after_sales_window_days": 15}))
    today = datetime.now(ZoneInfo(settings.reporting_timezone)).date().isoformat()
    whatif = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "services.cli", "whatif", "--policy", str(policy), "--from", today, "--to", today,
        "--csv", ".local/demo-whatif.csv", *by_order], capture_output=True, text=True, env=env, timeout=600)
    lines.append(f"  $ aftersales whatif --policy {policy} --from {today} --to {today} --order …")
    lines += [f"    {line}" for line in whatif.stdout.splitlines() if line.strip() and "━" not in line]
    if rebuilt.returncode or whatif.returncode:
        lines.append(f"  ✗ rebuild exited {rebuilt.returncode}, whatif {whatif.returncode}: "
                     f"{(rebuilt.stderr + whatif.stderr)[-800:]}")
    return lines


def _told_the_end(ticket_id: str, envelope: Any) -> bool:
    return bool(envelope.type == "BuyerNotification" and envelope.payload.ticket_id == ticket_id
                and str(envelope.payload.template) in FINAL_NOTICES)


async def _serving(office: httpx.AsyncClient, timeout: float = 60) -> None:
    """The back office answers once it has started (a 401 to a request without a session)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (await office.get("/api/me")).status_code == 401:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the back office did not answer at {office.base_url} in {timeout:.0f} s")
        await asyncio.sleep(0.3)
