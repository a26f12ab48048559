"""``aftersales fuzz``: hostile messages on every topic the workers consume, among valid flows.

Every hostile message must end as a dead letter (matched by its source offset or event id) or a
rejection (matched by ``rejected_event_id``), cause no other message (nothing on any topic may
name it as its cause but dead letters, rejections and alerts), and leave every worker running
and caught up. Every valid flow must still complete. The checker reads only the topics.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from contracts import Contract, Money, encode, new_envelope
from contracts import aftersales as c
from contracts import decisions as d
from contracts import erp as e
from contracts import orders as o
from contracts import payments as p
from contracts import warehouse as w
from contracts.ops import CompensationAcknowledged, OpsAlert, Severity
from contracts.topics import (
    COMPENSATION_ACKS,
    DECISIONS,
    ERP_ACKS,
    ORDER_EVENTS,
    REFUND_RESULTS,
    REQUESTS,
    TICKETS,
    WMS_EVENTS,
)

from .actors import RETURN_DESK, projection_probe
from .common.bus import Bus
from .common.db import make_engine, make_session_factory
from .common.kafka import ensure_topics
from .common.procs import ALL_WORKERS, WorkerProcesses
from .common.settings import Settings
from .harness import Check, Recorder, print_checks, wait_for_no_lag

SHOP = "shop-fuzz"
ENV = {
    "AFTERSALES_RETURN_ADDRESSES": RETURN_DESK,
    "AFTERSALES_SHOP_POLICIES": json.dumps({SHOP: {"finance_auto_approve_refund_only": True,
                                                   "payment_timeout_days": 1}}),
    "AFTERSALES_PARKED_REQUEST_WAIT_SECONDS": "20",  # valid requests may outrun their facts under load
    "AFTERSALES_PARKED_EVENT_WAIT_SECONDS": "20",
    "AFTERSALES_SCHEDULER_TICK_SECONDS": "0.5",
    "AFTERSALES_LOG_LEVEL": "WARNING",
}
CONSUMED = (ORDER_EVENTS, REQUESTS, TICKETS, DECISIONS, REFUND_RESULTS, WMS_EVENTS, ERP_ACKS, COMPENSATION_ACKS)
BAD_KEYS = (b" ", "售后".encode(), b"k" * 80, b"\xff\xfe\x00", b"a/b", b"")
HARMLESS_CAUSES = {"DeadLetter", "RequestRejected", "CommandRejected", "OpsAlert", "DeadLetterSummary"}


@dataclass
class Hostile:
    kind: str
    topic: str
    value: bytes
    key: bytes | None
    event_id: uuid.UUID | None = None
    partition: int = -1
    offset: int = -1


def _now() -> datetime:
    return datetime.now(UTC)


def _oid(tag: str) -> str:
    return f"F{tag}{uuid.uuid4().hex[:10]}"


def _placed(oid: str, paid_cents: int = 9_000) -> o.OrderPlaced:
    return o.OrderPlaced(order_id=oid, shop_id=SHOP, buyer_id="buyer-fuzz", placed_at=_now() - timedelta(hours=3),
                         lines=[o.OrderLine(line_no=1, sku="SKU-FZ", quantity=2, unit_price=Money.cny(5_000),
                                            paid=Money.cny(paid_cents))],
                         shipping_fee=Money.cny(0))


def _ghost_view(oid: str) -> c.TicketView:
    return c.TicketView(ticket_id=f"T-ghost-{uuid.uuid4().hex[:8]}", ticket_no="AS-GHOST", order_id=oid, shop_id=SHOP,
                        buyer_id="buyer-fuzz", type=c.AfterSalesType.RETURN_AND_REFUND,
                        status=c.TicketStatus.AWAITING_RECEIPT,
                        lines=[c.TicketLineView(line_no=1, sku="SKU-FZ", quantity=1, cap=Money.cny(100),
                                                refund=Money.cny(100))],
                        refund_total=Money.cny(100), applied_at=_now())


def _env(payload: Contract, oid: str, producer: str) -> tuple[bytes, uuid.UUID]:
    envelope = new_envelope(payload, key=oid, producer=producer)
    return encode(envelope), envelope.event_id


def _unknown_reference(topic: str, oid: str) -> tuple[Contract, str]:
    """A well-formed message, from the right producer, naming a ticket/refund/order nobody knows."""
    ghost = _ghost_view(oid)
    actor = c.Actor(role=c.Role.OPS, id="ops-fuzz")
    choices: dict[str, tuple[Contract, str]] = {
        ORDER_EVENTS.name: (o.OrderPaid(order_id=oid, paid_at=_now()), "order-system"),
        REQUESTS.name: (c.WithdrawTicket(ticket_id=ghost.ticket_id, order_id=oid, buyer_id="buyer-fuzz"),
                        "buyer-frontend"),
        TICKETS.name: (c.TicketStatusChanged(ticket=ghost, from_status=c.TicketStatus.AWAITING_RETURN,
                                             to_status=c.TicketStatus.AWAITING_RECEIPT, actor=actor), "intake"),
        DECISIONS.name: (d.ApproveTicket(ticket_id=ghost.ticket_id, order_id=oid, actor=actor), "back-office"),
        REFUND_RESULTS.name: (p.RefundSucceeded(refund_id=uuid.uuid4(), ticket_id=ghost.ticket_id, order_id=oid,
                                                amount=Money.cny(100), channel_ref="PAY-GHOST", settled_at=_now()),
                              "payment-channel"),
        WMS_EVENTS.name: (w.GoodsReceived(receipt_id=uuid.uuid4(), ticket_id=ghost.ticket_id, order_id=oid,
                                          receipt_type=w.ReceiptType.RETURN_RECEIPT,
                                          lines=[w.SkuQuantity(sku="SKU-FZ", quantity=1)],
                                          inspection=w.Inspection.PASSED, operator="wh-fuzz", received_at=_now()),
                          "wms"),
        ERP_ACKS.name: (e.ErpOrderAcknowledged(erp_order_id=uuid.uuid4(), order_id=oid, accepted=True), "erp"),
        COMPENSATION_ACKS.name: (CompensationAcknowledged(compensation_id=uuid.uuid4(), order_id=oid), "marketing"),
    }
    return choices[topic]


def hostile_messages(count: int, rng: random.Random, victims: list[o.OrderPlaced],
                     originals: list[tuple[bytes, Any]]) -> list[Hostile]:
    """``count`` hostile messages spread over every consumed topic and every kind of hostility."""
    kinds = ["invalid_json", "bad_key", "unknown_type", "foreign_type", "wrong_producer", "unknown_reference",
             "float_money", "nul_byte", "reused_id", "oversize"]
    out: list[Hostile] = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        topic = CONSUMED[(i // len(kinds)) % len(CONSUMED)].name
        oid = _oid("H")
        key: bytes | None = oid.encode()
        if kind == "invalid_json":
            out.append(Hostile(kind, topic, b'{"type": "OrderPaid", oops' + oid.encode(), key))
        elif kind == "bad_key":
            out.append(Hostile(kind, topic, b"{not json " + oid.encode(), rng.choice(BAD_KEYS) or None))
        elif kind == "oversize":
            out.append(Hostile(kind, topic, b'{"type": "OrderPaid", "x": "' + b"\x01" * 900_000 + b'"}', key))
        elif kind == "unknown_type":
            doc = orjson.loads(_env(OpsAlert(kind="X", severity=Severity.INFO, message="x", order_id=oid), oid,
                                    "intake")[0])
            doc["type"] = "StealEverything"
            out.append(Hostile(kind, topic, orjson.dumps(doc), key, uuid.UUID(doc["event_id"])))
        elif kind == "foreign_type":
            value, event_id = _env(OpsAlert(kind="X", severity=Severity.INFO, message="x", order_id=oid), oid,
                                   "finance")
            out.append(Hostile(kind, topic, value, key, event_id))
        elif kind == "wrong_producer":
            payload, _ = _unknown_reference(topic, oid)
            value, event_id = _env(payload, oid, "mallory")
            out.append(Hostile(kind, topic, value, key, event_id))
        elif kind == "unknown_reference":
            payload, producer = _unknown_reference(topic, oid)
            value, event_id = _env(payload, oid, producer)
            out.append(Hostile(kind, topic, value, key, event_id))
        elif kind == "float_money":
            doc = orjson.loads(_env(_placed(oid), oid, "order-system")[0])
            doc["payload"]["lines"][0]["paid"]["cents"] = 4_500.5
            out.append(Hostile(kind, ORDER_EVENTS.name, orjson.dumps(doc), key, uuid.UUID(doc["event_id"])))
        elif kind == "nul_byte" and victims:
            victim = victims.pop()
            request = c.RequestAfterSales(
                request_id=uuid.uuid4(), order_id=victim.order_id, buyer_id="buyer-fuzz",
                type=c.AfterSalesType.REFUND_ONLY, lines=[c.RequestedLine(line_no=1, quantity=1)],
                reason_code="NO_LONGER_WANTED", description="see \x00 attached")
            value, event_id = _env(request, victim.order_id, "buyer-frontend")
            out.append(Hostile(kind, REQUESTS.name, value, victim.order_id.encode(), event_id))
        elif kind == "reused_id" and originals:
            _raw, original = originals.pop()
            forged = original.model_copy(update={"payload": original.payload.model_copy(
                update={"shipping_fee": Money.cny(99_999)})})
            out.append(Hostile(kind, ORDER_EVENTS.name, encode(forged), original.key.encode(), original.event_id))
        else:
            out.append(Hostile("invalid_json", topic, b"[" + oid.encode(), key))
    return out


async def _projected(projection: Callable[[str], Awaitable[str | None]], oid: str, state: str,
                     timeout: float) -> bool:
    """A buyer asks after the order page shows the order shipped (as the e2e buyer does)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await projection(oid) != state:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _valid_flow(sender: Bus, recorder: Recorder, projection: Callable[[str], Awaitable[str | None]],
                      oid: str, placed: o.OrderPlaced, originals: list[tuple[bytes, Any]], valid: set[uuid.UUID],
                      timeout: float) -> bool:
    async def publish(payload: Contract) -> Any:
        envelope = await sender.publish(payload, key=oid)
        valid.add(envelope.event_id)
        return envelope

    envelope = await publish(placed)
    originals.append((encode(envelope), envelope))
    await publish(o.OrderPaid(order_id=oid, paid_at=placed.placed_at + timedelta(minutes=1)))
    await publish(o.OrderShipped(order_id=oid, shipped_at=placed.placed_at + timedelta(hours=1)))
    if not await _projected(projection, oid, "SHIPPED", timeout):
        return False
    await publish(c.RequestAfterSales(request_id=uuid.uuid4(), order_id=oid, buyer_id="buyer-fuzz",
                                      type=c.AfterSalesType.REFUND_ONLY, lines=[c.RequestedLine(line_no=1, quantity=1)],
                                      reason_code="NO_LONGER_WANTED"))
    try:
        opened = await recorder.wait_for(oid, lambda m: m.type == "TicketOpened", timeout)
        ticket = opened.payload.ticket
        if not ticket.before_shipment:  # before shipment the intercept result approves it (no person)
            await publish(d.ApproveTicket(ticket_id=ticket.ticket_id, order_id=oid,
                                          actor=c.Actor(role=c.Role.OPS, id="ops-fuzz")))
        await recorder.wait_for(oid, lambda m: m.type == "TicketStatusChanged"
                                and m.payload.to_status == c.TicketStatus.COMPLETED, timeout)
        return True
    except TimeoutError:
        return False


async def run(settings: Settings, *, messages: int, flows: int, seed: int = 7, timeout: float = 180.0,
              log_dir: Path = Path(".local/logs/fuzz")) -> int:
    """Runs the fuzz against freshly started worker processes; returns the number of violations."""
    rng = random.Random(seed)
    await ensure_topics(settings)
    procs = WorkerProcesses(ALL_WORKERS, log_dir, env=ENV)
    engine = make_engine(settings)
    projection = projection_probe(make_session_factory(engine))
    procs.start()
    started = time.monotonic()
    try:
        async with Recorder(settings) as recorder, Bus(settings, "fuzz") as sender:
            valid: set[uuid.UUID] = set()  # every valid message: none may be dead-lettered or refused
            victims = [_placed(_oid("V")) for _ in range(max(messages // 10, 1))]
            for victim in victims:  # shipped orders whose NUL-byte request must open nothing
                for fact in (victim, o.OrderPaid(order_id=victim.order_id, paid_at=_now() - timedelta(hours=2)),
                             o.OrderShipped(order_id=victim.order_id, shipped_at=_now() - timedelta(hours=1))):
                    valid.add((await sender.publish(fact, key=victim.order_id)).event_id)
            originals: list[tuple[bytes, Any]] = []
            flow_tasks = [asyncio.create_task(_valid_flow(sender, recorder, projection, oid, _placed(oid), originals,
                                                          valid, timeout)) for oid in (_oid("G") for _ in range(flows))]
            while len(originals) < min(flows, messages // 10):  # noqa: ASYNC110 - reused ids need originals
                await asyncio.sleep(0.05)
            hostile = hostile_messages(messages, rng, list(victims), list(originals))
            for message in hostile:
                message.partition, message.offset = await sender.send_raw(message.topic, message.value,
                                                                          message.key)
            completed = sum(await asyncio.gather(*flow_tasks))
            lag = await wait_for_no_lag(settings, procs.consumer_groups(settings), timeout)
            checks, by_kind = await settled(recorder, hostile, timeout)
            checks.append(refused_valid(recorder, valid - {h.event_id for h in hostile}))
            elapsed = time.monotonic() - started
    finally:
        exits = procs.dead()
        procs.stop()
        await engine.dispose()
    checks += [Check("valid flows not completed", flows - completed, f"{completed}/{flows} completed"),
               Check("workers that exited", len(exits), ", ".join(f"{n}={c}" for n, c in exits.items())),
               Check("consumer groups left behind (stall)", sum(1 for v in lag.values() if v),
                     ", ".join(f"{g}: {v}" for g, v in lag.items() if v))]
    sent = sorted(Counter(h.kind for h in hostile).items())
    figures = [("hostile messages", len(hostile)), ("valid flows", flows), ("elapsed", f"{elapsed:.0f} s"),
               *[(f"  {kind}", f"{n} sent, {by_kind[kind + ':dlq']} dead-lettered, "
                  f"{by_kind[kind + ':rejected']} rejected") for kind, n in sent]]
    return print_checks("fuzz", figures, checks)


def refused_valid(recorder: Recorder, valid: set[uuid.UUID]) -> Check:
    """A hostile message must never take a valid one down with it (a fact, a request, a decision)."""
    hit = [f"{m.type} of {m.payload.original_type} {m.payload.original_event_id}"
           for m in recorder.of_type("DeadLetter") if m.payload.original_event_id in valid]
    hit += [f"{m.type} {m.payload.code} of {m.payload.rejected_event_id}"
            for m in recorder.of_type("RequestRejected", "CommandRejected") if m.payload.rejected_event_id in valid]
    return Check("valid messages dead-lettered or refused", len(hit), "", hit)


async def settled(recorder: Recorder, hostile: list[Hostile], timeout: float) -> tuple[list[Check], Counter[str]]:
    """The checks once every hostile message has an outcome, or as they stand after ``timeout``
    (parked messages reach theirs only when their wait runs out)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        checks, by_kind = check(recorder, hostile)
        if not checks[0].violations or asyncio.get_running_loop().time() > deadline:
            return checks, by_kind
        await asyncio.sleep(0.5)


def check(recorder: Recorder, hostile: list[Hostile]) -> tuple[list[Check], Counter[str]]:
    letters = [m for m in recorder.of_type("DeadLetter")]
    by_offset = {(m.payload.source_topic, m.payload.partition, m.payload.offset) for m in letters}
    by_event = {m.payload.original_event_id for m in letters if m.payload.original_event_id}
    rejected = {m.payload.rejected_event_id for m in recorder.of_type("RequestRejected", "CommandRejected")}
    hostile_ids = {h.event_id for h in hostile if h.event_id}
    reused = {h.event_id for h in hostile if h.kind == "reused_id"}
    by_kind: Counter[str] = Counter()
    silent: list[str] = []
    for h in hostile:
        dead = (h.topic, h.partition, h.offset) in by_offset or (h.event_id in by_event and h.kind != "reused_id")
        refused = h.event_id is not None and h.event_id in rejected
        by_kind[h.kind + ":dlq"] += dead
        by_kind[h.kind + ":rejected"] += refused
        if not dead and not refused:
            silent.append(f"{h.kind} on {h.topic}[{h.partition}]@{h.offset}")
    effects = [f"{m.type} caused by {m.causation_id}" for envs in recorder.by_key.values() for m in envs
               if m.causation_id in hostile_ids and m.causation_id not in reused and m.type not in HARMLESS_CAUSES]
    return [Check("hostile messages with no outcome (silent)", len(silent), "", silent),
            Check("side effects of hostile messages", len(effects), "", effects)], by_kind
