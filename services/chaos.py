"""``aftersales chaos``: mixed after-sales flows while workers die, the broker and the database
restart and a worker freezes; then a checker that trusts nothing but the topics and the payment
simulator's own records.

The flows cover every type (cancel, refund only before and after shipment, return with passing
and failing inspections, exchange, repair), with payment timeouts, declines and late answers,
WMS mismatches and a merchant whose ERP fails twice before it accepts. A scripted buyer, ops and
finance react to what the topics show (as people would to the back office). Meanwhile the monkey
SIGKILLs random worker processes and the payment simulator (each comes back after 1–3 s),
restarts Kafka once and PostgreSQL once, and SIGSTOPs one worker past the session timeout.

The invariants checked afterwards, each printed with its violation count (non-zero exit if any):
no lost request; no ticket paid twice; Σ refunds per order line ≤ paid; every ticket terminal
or waiting with a future deadline; REFUND_FAILED only after a real decline; no worker exited on
its own; every ticket's audit trail an unbroken chain; exactly one CloseOrder per fully refunded
or cancelled order and none for the others; every consumer group caught up at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from contracts import Envelope, Money
from contracts import aftersales as c
from contracts import decisions as d
from contracts import orders as o

from .actors import RETURN_DESK
from .common.bus import Bus
from .common.db import make_engine, make_session_factory
from .common.failures import Failure, classify
from .common.kafka import ensure_topics
from .common.logging import get_logger
from .common.procs import ALL_WORKERS, WORKERS, WorkerProcesses, worker_of
from .common.settings import Settings
from .common.tables import PaymentChannelRefund, SimOrderPayment
from .harness import Check, Recorder, print_checks, wait_for_no_lag
from .simulators.scenarios import set_scenario

log = get_logger("chaos")
ROOT = Path(__file__).resolve().parents[1]
SHOP, ERP_SHOP = "shop-chaos", "shop-chaos-erp"
ENV = {
    "AFTERSALES_RETURN_ADDRESSES": RETURN_DESK,
    "AFTERSALES_SHOP_POLICIES": json.dumps({SHOP: {"payment_timeout_days": 1},
                                            ERP_SHOP: {"payment_timeout_days": 1, "has_erp": True}}),
    "AFTERSALES_REFUND_RETRY_BASE_SECONDS": "2",  # resends span > 60 s: longer than any outage here
    "AFTERSALES_REFUND_MAX_ATTEMPTS": "6",
    "AFTERSALES_ERP_RETRY_BASE_SECONDS": "1",
    "AFTERSALES_ERP_MAX_ATTEMPTS": "8",
    "AFTERSALES_SCHEDULER_TICK_SECONDS": "0.5",
    "AFTERSALES_KAFKA_SESSION_TIMEOUT_MS": "10000",
    "AFTERSALES_LOG_LEVEL": "WARNING",
}
TERMINAL = {c.TicketStatus.COMPLETED, c.TicketStatus.CLOSED}
FLOWS = ("cancel", "refund_before_shipment", "refund_after_shipment", "return", "return_mismatch", "exchange",
         "repair")
WEIGHTS = (1, 2, 3, 4, 1, 2, 1)
OPS = c.Actor(role=c.Role.OPS, id="ops-chaos")
FINANCE = c.Actor(role=c.Role.FINANCE, id="fin-chaos")


@dataclass
class Flow:
    kind: str
    order_id: str
    placed: o.OrderPlaced
    request_id: uuid.UUID
    lines: list[tuple[int, int]]
    payment: str = "ok"
    ticket_id: str | None = None
    outcome: str = "running"


@dataclass
class Monkey:
    """What the monkey did, for the report."""

    kills: list[str] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    freezes: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def plan_flow(rng: random.Random, i: int) -> Flow:
    kind = rng.choices(FLOWS, WEIGHTS)[0]
    oid = f"C{i:05d}{uuid.uuid4().hex[:8]}"
    shop = ERP_SHOP if kind in ("return", "exchange") and rng.random() < 0.2 else SHOP
    quantities = [rng.randint(1, 3) for _ in range(rng.randint(1, 2))]
    now = _now()
    placed_at = now - (timedelta(minutes=10) if kind in ("cancel", "refund_before_shipment") else timedelta(days=2))
    lines = [o.OrderLine(line_no=n, sku=f"SKU-C{n}", quantity=q, unit_price=Money.cny(3_000 + 100 * n),
                         paid=Money.cny(q * (2_900 + 100 * n) + rng.randint(0, 2)))
             for n, q in enumerate(quantities, start=1)]
    placed = o.OrderPlaced(order_id=oid, shop_id=shop, buyer_id=f"buyer-{i % 97}", placed_at=placed_at, lines=lines,
                           shipping_fee=Money.cny(600), platform_fee=Money.cny(100))
    whole = rng.random() < 0.5  # every unit of every line, or a part
    wanted = [(ln.line_no, ln.quantity if whole else rng.randint(1, ln.quantity)) for ln in lines]
    if kind in ("cancel",):
        wanted = []
    payment = rng.choices(["ok", "timeout_once", "fail_once", "late", "fail"], [70, 10, 8, 6, 6])[0]
    return Flow(kind, oid, placed, uuid.uuid4(), wanted, payment)


async def _waiting_out_outages(action: Callable[[], Awaitable[None]]) -> None:
    """The driver's own calls (the order system's table, the simulators' Redis knobs) wait out a
    restart of PostgreSQL or Redis like the workers do, instead of ending the run."""
    while True:
        try:
            await action()
            return
        except Exception as exc:
            if classify(exc) is not Failure.INFRASTRUCTURE:
                raise
            await asyncio.sleep(0.5)


async def _record_payment(sessions: Any, order_id: str, paid_at: datetime) -> None:
    """The order system takes the payment in its own database before it announces OrderPaid
    (the simulator reads the same table: it refuses to close a paid order)."""
    async def insert_payment() -> None:
        async with sessions() as session, session.begin():
            await session.execute(insert(SimOrderPayment).values(order_id=order_id, paid_at=paid_at)
                                  .on_conflict_do_nothing())
    await _waiting_out_outages(insert_payment)


async def _facts(sender: Bus, sessions: Any, flow: Flow) -> None:
    """The order's history, announced at once (the order was placed days ago): the order system
    has long recorded the payment by the time anybody sees the order."""
    p = flow.placed
    paid_at = p.placed_at + timedelta(minutes=1)
    if flow.kind != "cancel":
        await _record_payment(sessions, flow.order_id, paid_at)
    await sender.publish(p, key=flow.order_id)
    if flow.kind == "cancel":
        return
    await sender.publish(o.OrderPaid(order_id=flow.order_id, paid_at=paid_at), key=flow.order_id)
    if flow.kind == "refund_before_shipment":
        return
    await sender.publish(o.OrderShipped(order_id=flow.order_id, shipped_at=p.placed_at + timedelta(hours=3)),
                         key=flow.order_id)
    if flow.kind != "refund_after_shipment":
        await sender.publish(o.OrderCompleted(order_id=flow.order_id, completed_at=_now() - timedelta(hours=1)),
                             key=flow.order_id)


def _type(flow: Flow) -> c.AfterSalesType:
    return {"cancel": c.AfterSalesType.CANCEL, "refund_before_shipment": c.AfterSalesType.REFUND_ONLY,
            "refund_after_shipment": c.AfterSalesType.REFUND_ONLY, "return": c.AfterSalesType.RETURN_AND_REFUND,
            "return_mismatch": c.AfterSalesType.RETURN_AND_REFUND, "exchange": c.AfterSalesType.EXCHANGE,
            "repair": c.AfterSalesType.REPAIR}[flow.kind]


async def _scenario(redis: Redis, system: str, subject: str, scenario: str) -> None:
    """Tells a simulator what to play."""
    await _waiting_out_outages(lambda: set_scenario(redis, system, subject, scenario))


async def drive(flow: Flow, sender: Bus, recorder: Recorder, redis: Redis, sessions: Any, timeout: float) -> None:
    """One flow as the buyer and staff would play it, reacting to each transition in order."""
    if flow.payment != "ok":
        await _scenario(redis, "payment", flow.order_id, flow.payment)
    if flow.kind == "return_mismatch":
        await _scenario(redis, "wms", flow.order_id, "FEWER_UNITS")
    if flow.placed.shop_id == ERP_SHOP:
        await _scenario(redis, "erp", ERP_SHOP, "fail:2")
    await _facts(sender, sessions, flow)
    reason = "QUALITY_PROBLEM" if flow.kind == "repair" else "NO_LONGER_WANTED"
    await sender.publish(c.RequestAfterSales(
        request_id=flow.request_id, order_id=flow.order_id, buyer_id=flow.placed.buyer_id, type=_type(flow),
        lines=[c.RequestedLine(line_no=n, quantity=q) for n, q in flow.lines], reason_code=reason,
        evidence=["photo-1"] if reason == "QUALITY_PROBLEM" else []), key=flow.order_id)
    try:
        answer = await recorder.wait_for(flow.order_id, lambda m: (
            m.type == "TicketOpened" and m.payload.request_id == flow.request_id) or (
            m.type == "RequestRejected" and m.payload.request_id == flow.request_id), timeout)
    except TimeoutError:
        flow.outcome = "no answer to the request"
        return
    if answer.type == "RequestRejected":
        flow.outcome = f"rejected {answer.payload.code}"
        return
    ticket = answer.payload.ticket
    flow.ticket_id = ticket.ticket_id
    handled: set[uuid.UUID] = set()
    if not ticket.before_shipment and ticket.type != c.AfterSalesType.CANCEL:
        await sender.publish(d.ApproveTicket(ticket_id=ticket.ticket_id, order_id=flow.order_id, actor=OPS),
                             key=flow.order_id)
    while True:
        try:
            change = await recorder.wait_for(flow.order_id, lambda m: (
                m.type == "TicketStatusChanged" and m.payload.ticket.ticket_id == ticket.ticket_id
                and m.event_id not in handled), timeout)
        except TimeoutError:
            flow.outcome = "stuck"
            return
        handled.add(change.event_id)
        later = [m for m in recorder.by_key[flow.order_id] if m.type == "TicketStatusChanged"
                 and m.payload.ticket.ticket_id == ticket.ticket_id and m.event_id not in handled]
        if later:
            continue  # a newer transition is already here: act on that one
        if not await _react(change, flow, sender, redis):
            flow.outcome = str(change.payload.to_status)
            return


async def _react(change: Envelope[Any], flow: Flow, sender: Bus, redis: Redis) -> bool:
    """What the buyer or staff do on entering a status; False once the ticket has ended."""
    event: c.TicketStatusChanged = change.payload
    view, status, oid = event.ticket, event.to_status, flow.order_id
    ids = {"ticket_id": view.ticket_id, "order_id": oid}
    if status in TERMINAL:
        return False
    if event.enters(c.TicketStatus.PENDING_REVIEW):
        await sender.publish(d.ApproveTicket(ticket_id=view.ticket_id, order_id=oid, actor=OPS), key=oid)
    elif status == c.TicketStatus.PENDING_REFUND:
        await sender.publish(d.ApproveRefund(**ids, actor=FINANCE), key=oid)
    elif status == c.TicketStatus.AWAITING_RETURN:
        await sender.publish(c.SubmitReturnShipment(**ids, buyer_id=view.buyer_id, carrier="SF",
                                                    waybill=f"SF{uuid.uuid4().int % 10**10:010d}"), key=oid)
    elif status == c.TicketStatus.INTERVENTION:
        await sender.publish(d.ResolveIntervention(
            **ids, actor=OPS, outcome=d.InterventionOutcome.NEGOTIATED, note="agreed with the buyer",
            lines=[d.LineAmount(line_no=ln.line_no, refund_cents=ln.refund.cents // 2) for ln in view.lines]), key=oid)
    elif status == c.TicketStatus.REFUND_FAILED:
        await _scenario(redis, "payment", oid, "ok")  # the buyer gave another account
        await sender.publish(d.RetryRefund(**ids, actor=FINANCE), key=oid)
    elif status == c.TicketStatus.RESHIPPED:
        await sender.publish(c.ConfirmExchangeReceived(**ids, buyer_id=view.buyer_id), key=oid)
    return True


async def monkey(procs: WorkerProcesses, plan: list[str], interval: float, rng: random.Random,
                 done: Monkey, session_timeout: float, warm: asyncio.Event) -> None:
    """Carries out ``plan`` (kill / broker / postgres / freeze), one step every ``interval`` s,
    once the system has completed its first flow (every process is up by then)."""
    targets = [n for n in procs.workers if worker_of(n) in WORKERS] + ["payment-channel"]
    await warm.wait()
    for step in plan:
        await asyncio.sleep(interval)
        if step == "kill":
            victim = rng.choice([t for t in targets if t in procs.procs])
            procs.kill(victim)
            done.kills.append(victim)
            await asyncio.sleep(rng.uniform(1, 3))
            procs.restart(victim)
        elif step in ("kafka", "postgres"):
            started = time.monotonic()
            restarted = await asyncio.to_thread(
                subprocess.run, ["bash", str(ROOT / "deploy/local/restart.sh"), step, "2"],
                capture_output=True, text=True, check=False)
            if restarted.returncode != 0:  # say why the service did not come back, then stop the run
                raise RuntimeError(f"restart.sh {step} failed: {restarted.stderr.strip()[-2000:]}")
            done.restarts.append(f"{step} ({time.monotonic() - started:.0f} s down)")
        elif step == "freeze":
            victim = rng.choice([n for n in procs.workers if worker_of(n) in WORKERS and n in procs.procs])
            procs.freeze(victim)
            await asyncio.sleep(session_timeout + 5)
            procs.thaw(victim)
            done.freezes.append(f"{victim} ({session_timeout + 5:.0f} s)")


def make_plan(kills: int, broker: bool, postgres: bool, freeze: bool) -> list[str]:
    plan = ["kill"] * kills
    for extra, position in (("kafka", broker), ("postgres", postgres), ("freeze", freeze)):
        if position:
            plan.insert(len(plan) // 2 if extra != "freeze" else len(plan), extra)
    return plan


async def run(settings: Settings, *, tickets: int, kills: int, broker_restart: bool = True,
              postgres_restart: bool = True, freeze: bool = True, seed: int = 11, concurrency: int = 200,
              rate: float = 12.0, log_dir: Path = ROOT / ".local/logs/chaos") -> int:
    """Runs the chaos; returns the number of invariant violations."""
    rng = random.Random(seed)
    await ensure_topics(settings)
    procs = WorkerProcesses(ALL_WORKERS, log_dir, env=ENV, replicas=2)
    plan = make_plan(kills, broker_restart, postgres_restart, freeze)
    interval = max(tickets / rate / (len(plan) + 1), 5.0)
    flows = [plan_flow(rng, i) for i in range(tickets)]
    done = Monkey()
    # hundreds of flows share a few connections, waiting their turn instead of opening one each
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(settings.redis_url, max_connections=20,
                                                                  timeout=60))
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    procs.start()
    started = time.monotonic()
    try:
        async with Recorder(settings) as recorder, Bus(settings, "chaos") as sender:
            gate = asyncio.Semaphore(concurrency)
            warm = asyncio.Event()

            async def one(flow: Flow) -> None:
                async with gate:
                    await drive(flow, sender, recorder, redis, sessions, timeout=300)
                warm.set()

            chaos = asyncio.create_task(monkey(procs, plan, interval, rng, done, 10.0, warm))
            await asyncio.gather(*(one(f) for f in flows))
            await chaos
            drove = time.monotonic() - started
            lag = await wait_for_no_lag(settings, procs.consumer_groups(settings), 120)
            await asyncio.sleep(2)
            paid = await _payments(settings)
            checks = check(recorder, flows, paid)
    finally:
        exits = procs.dead()
        procs.stop()
        await redis.aclose()
        await engine.dispose()
    checks += [Check("workers that exited on their own", len(exits), ", ".join(f"{n}={x}" for n, x in exits.items())),
               Check("consumer groups left behind", sum(1 for v in lag.values() if v),
                     ", ".join(f"{g}: {v}" for g, v in lag.items() if v))]
    outcomes: dict[str, int] = defaultdict(int)
    for f in flows:
        outcomes[f"{f.kind}: {f.outcome}"] += 1
    figures = [("tickets", tickets), ("processes", f"{len(procs.workers)} (2 per worker)"),
               ("driving time", f"{drove:.0f} s ({tickets / drove:.1f} tickets/s)"),
               ("SIGKILLs", f"{len(done.kills)}: {', '.join(done.kills)}"),
               ("restarts", ", ".join(done.restarts) or "none"), ("frozen", ", ".join(done.freezes) or "none"),
               *[(f"  {k}", n) for k, n in sorted(outcomes.items())]]
    return print_checks("chaos", figures, checks)


async def _payments(settings: Settings) -> dict[uuid.UUID, int]:
    """The payment simulator's own record: refund id → amount paid."""
    engine = make_engine(settings)
    try:
        async with make_session_factory(engine)() as session:
            rows = (await session.execute(select(PaymentChannelRefund.refund_id,
                                                 PaymentChannelRefund.amount_cents))).all()
        return {r.refund_id: r.amount_cents for r in rows}
    finally:
        await engine.dispose()


def check(recorder: Recorder, flows: list[Flow], paid: dict[uuid.UUID, int]) -> list[Check]:
    now = _now()
    checks: list[Check] = []
    by_order = {f.order_id: f for f in flows}
    answered = {m.payload.request_id for m in recorder.of_type("TicketOpened", "RequestRejected")}
    lost = [f"{f.kind} {f.order_id}" for f in flows if f.request_id not in answered]
    checks.append(Check("requests with no ticket and no rejection", len(lost), "", lost))

    refunds_of: dict[str, set[uuid.UUID]] = defaultdict(set)
    for m in recorder.of_type("ExecuteRefund"):
        if m.key in by_order and m.payload.refund_id in paid:
            refunds_of[m.payload.ticket_id].add(m.payload.refund_id)
    twice = [f"{t}: {len(ids)} refunds paid" for t, ids in refunds_of.items() if len(ids) > 1]
    checks.append(Check("tickets paid more than once", len(twice), "", twice))

    changes: dict[str, list[Envelope[Any]]] = defaultdict(list)
    opened: dict[str, Envelope[Any]] = {}
    for oid in by_order:
        for m in recorder.by_key.get(oid, []):
            if m.type == "TicketStatusChanged":
                changes[m.payload.ticket.ticket_id].append(m)
            elif m.type == "TicketOpened":
                opened[m.payload.ticket.ticket_id] = m
    for trail in changes.values():
        trail.sort(key=lambda m: m.occurred_at)

    over: list[str] = []
    refunded_per_line: dict[tuple[str, int], int] = defaultdict(int)
    paid_per_order: dict[str, int] = defaultdict(int)
    for ticket_id, ids in refunds_of.items():
        for refund_id in ids:
            completed = [m for m in changes.get(ticket_id, []) if m.payload.to_status == c.TicketStatus.COMPLETED]
            if completed:
                for ln in completed[-1].payload.ticket.lines:
                    refunded_per_line[(completed[-1].key, ln.line_no)] += ln.refund.cents
            paid_per_order[next(iter(changes[ticket_id])).key if changes.get(ticket_id) else ""] += paid[refund_id]
    for (oid, line_no), cents in refunded_per_line.items():
        line = next(ln for ln in by_order[oid].placed.lines if ln.line_no == line_no)
        if cents > line.paid.cents:
            over.append(f"{oid} line {line_no}: {cents} > {line.paid.cents}")
    for oid, cents in paid_per_order.items():
        if oid in by_order:
            flow = by_order[oid]
            if cents > sum(ln.paid.cents for ln in flow.placed.lines) + flow.placed.shipping_fee.cents:
                over.append(f"{oid}: paid out {cents} > paid in")
    checks.append(Check("lines or orders refunded above what was paid", len(over), "", over))

    waiting: list[str] = []
    for ticket_id, first in opened.items():
        last = changes[ticket_id][-1].payload.ticket if changes.get(ticket_id) else first.payload.ticket
        if last.status not in TERMINAL and (last.deadline_at is None or last.deadline_at <= now):
            waiting.append(f"{ticket_id} {last.status.value} deadline {last.deadline_at}")
    checks.append(Check("tickets neither ended nor waiting on a future deadline", len(waiting), "", waiting))

    declined = {m.payload.ticket_id for m in recorder.of_type("RefundFailed") if not m.payload.retryable}
    false_failures = [t for t, trail in changes.items()
                      if any(m.payload.to_status == c.TicketStatus.REFUND_FAILED for m in trail) and t not in declined]
    checks.append(Check("REFUND_FAILED without a real decline", len(false_failures), "", false_failures))

    broken: list[str] = []
    for ticket_id, trail in changes.items():
        state = c.TicketStatus.PENDING_REVIEW
        for m in trail:
            if m.payload.from_status != state:
                broken.append(f"{ticket_id}: {state.value} then {m.payload.from_status}->"
                              f"{m.payload.to_status}")
                break
            state = m.payload.to_status
    checks.append(Check("audit trails with a gap", len(broken), "", broken))

    closes: dict[str, set[uuid.UUID]] = defaultdict(set)
    for m in recorder.of_type("CloseOrder"):
        if m.key in by_order and m.payload.ticket_id is not None:  # a passive cancel is a request only
            closes[m.key].add(m.event_id)
    wrong: list[str] = []
    for oid, flow in by_order.items():
        expected = 1 if _should_close(flow, changes) else 0
        if len(closes.get(oid, ())) != expected:
            wrong.append(f"{flow.kind} {oid}: {len(closes.get(oid, ()))} CloseOrder, expected {expected}")
    checks.append(Check("orders without exactly the CloseOrder they need", len(wrong), "", wrong))
    closed = {m.key for m in recorder.of_type("OrderClosed")}
    paid_and_closed = [f"{f.kind} {oid}" for oid, f in by_order.items()
                       if oid in closed and f.kind != "cancel" and not _should_close(f, changes)]
    checks.append(Check("paid orders closed (not fully refunded)", len(paid_and_closed), "", paid_and_closed))
    return checks


def _should_close(flow: Flow, changes: dict[str, list[Envelope[Any]]]) -> bool:
    """A cancelled order, or one whose every unit was refunded in full: every unit in the completed
    ticket and each line's whole paid amount refunded (a negotiated lower amount keeps it open)."""
    if flow.kind == "cancel":
        return flow.outcome == "COMPLETED"
    if flow.kind in ("exchange", "repair") or flow.ticket_id is None:
        return False
    completed = [m for m in changes.get(flow.ticket_id, []) if m.payload.to_status == c.TicketStatus.COMPLETED]
    if not completed:
        return False
    refunded = {ln.line_no: ln.refund.cents for ln in completed[-1].payload.ticket.lines}
    return all(dict(flow.lines).get(ln.line_no, 0) == ln.quantity and refunded.get(ln.line_no, 0) >= ln.paid.cents
               for ln in flow.placed.lines)
