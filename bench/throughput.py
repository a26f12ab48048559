"""Throughput of the after-sales runtime against a raw aiokafka relay, measured in the same run.

  baseline  raw aiokafka: consume, produce (idempotent, acks=all), commit the offset per message
  ceiling   raw aiokafka in batches: fetch up to 100, produce them, commit once (no database at all)
  runtime   the production Worker: decode, inbox, handler and outbox row per message in a savepoint,
            one PostgreSQL commit per fetched batch, offset commit, then the outbox relay publishes
  per-msg   the same delivery rules (Worker.handle: decode, boundary, inbox, unit of work, outbox,
            dead letter) as the body of a plain per-message FastStream subscriber, acked (offset
            committed) by FastStream after each message: what the runtime would cost without its
            batch path; the runtime module's docstring quotes this ratio
  intake    the real intake worker applying N OrderPlaced events to its projection

Usage: python bench/throughput.py [N]   (needs the stack: bash deploy/local/up.sh; source .local/env)
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from contracts import Money, encode, new_envelope
from contracts.ops import OpsAlert, Severity
from contracts.orders import OrderLine, OrderPaid, OrderPlaced
from services.common.kafka import ensure_topics, make_producer
from services.common.routes import Subscription, route
from services.common.runtime import Worker
from services.common.settings import Settings
from services.common.uow import SqlUnitOfWork
from services.intake.app import build_worker as build_intake

PARTITIONS = 6


async def topic(settings: Settings) -> str:
    name = f"bench.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**settings.kafka_client())
    await admin.start()
    await admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    await admin.close()
    return name


async def fill(settings: Settings, name: str, values: list[tuple[str, bytes]]) -> None:
    producer = make_producer(settings, "bench-fill")
    await producer.start()
    futures = [await producer.send(name, value, key=key.encode()) for key, value in values]
    await asyncio.gather(*futures)
    await producer.stop()


def alerts(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        key = f"O-{i % 500}"
        out.append((key, encode(new_envelope(OpsAlert(kind="BENCH", severity=Severity.INFO, message=str(i),
                                                      order_id=key), key=key, producer="bench"))))
    return out


async def count_until(settings: Settings, name: str, n: int, timeout: float = 600) -> None:
    consumer = AIOKafkaConsumer(name, **settings.kafka_client(),
                                auto_offset_reset="earliest", group_id=f"bench-count-{uuid.uuid4()}")
    await consumer.start()
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < n and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=200, max_records=5000)
        seen += sum(len(v) for v in batch.values())
    await consumer.stop()
    if seen < n:
        raise RuntimeError(f"only {seen}/{n} messages arrived on {name}")


async def first_processed(worker: Worker[Any]) -> float:
    """Timing starts at the first handled message: the consumer-group join is not throughput."""
    while worker.processed == 0:  # noqa: ASYNC110 - a counter the worker bumps; the bench only reads it
        await asyncio.sleep(0.001)
    return time.monotonic()


async def raw_relay(settings: Settings, n: int) -> float:
    source, sink = await topic(settings), await topic(settings)
    await fill(settings, source, alerts(n))
    consumer = AIOKafkaConsumer(source, **settings.kafka_client(),
                                group_id=f"bench-raw-{uuid.uuid4()}", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    producer = make_producer(settings, "bench-raw")
    await consumer.start()
    await producer.start()
    record = await consumer.getone()
    started = time.monotonic()
    for i in range(n):
        if i:
            record = await consumer.getone()
        await (await producer.send(sink, record.value, key=record.key))
        await consumer.commit()
    elapsed = time.monotonic() - started
    await consumer.stop()
    await producer.stop()
    await count_until(settings, sink, n)
    return elapsed


async def raw_batched_relay(settings: Settings, n: int) -> float:
    """The Kafka-only ceiling: fetch a batch, produce it, commit once per batch."""
    source, sink = await topic(settings), await topic(settings)
    await fill(settings, source, alerts(n))
    consumer = AIOKafkaConsumer(source, **settings.kafka_client(),
                                group_id=f"bench-rawb-{uuid.uuid4()}", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    producer = make_producer(settings, "bench-rawb")
    await consumer.start()
    await producer.start()
    done = 0
    started = 0.0
    while done < n:
        batch = await consumer.getmany(timeout_ms=50, max_records=settings.batch_max_records)
        records = [r for rs in batch.values() for r in rs]
        if records and not started:
            started = time.monotonic()
        await asyncio.gather(*[await producer.send(sink, r.value, key=r.key) for r in records])
        if records:
            await consumer.commit()
        done += len(records)
    elapsed = time.monotonic() - started
    await consumer.stop()
    await producer.stop()
    return elapsed


def forwarding(source: str, sink: str) -> Subscription[Any]:
    """The relay both runtime scenarios run: every alert on ``source`` republished to ``sink``."""
    async def forward(envelope: Any, uow: Any, deps: Any) -> None:
        uow.publish(envelope.payload, key=envelope.key, cause=envelope, topic=sink)

    return Subscription(source, [route(OpsAlert, forward)])


async def runtime_relay(settings: Settings, n: int) -> float:
    source, sink = await topic(settings), await topic(settings)
    await fill(settings, source, alerts(n))
    worker = Worker(f"bench-{uuid.uuid4().hex[:6]}", settings, [forwarding(source, sink)], unit_of_work=SqlUnitOfWork)
    app = worker.build_app()
    await app.start()
    started = await first_processed(worker)
    await count_until(settings, sink, n)
    elapsed = time.monotonic() - started
    await app.stop()
    return elapsed


async def faststream_per_message(settings: Settings, n: int) -> float:
    """The delivery rules as a per-message FastStream subscriber: one transaction and one ack each."""
    source, sink = await topic(settings), await topic(settings)
    await fill(settings, source, alerts(n))
    subscription = forwarding(source, sink)
    worker = Worker(f"bench-{uuid.uuid4().hex[:6]}", settings, [subscription], unit_of_work=SqlUnitOfWork)
    broker = KafkaBroker(settings.kafka_bootstrap_servers, client_id="bench-per-message",  # logs as the runtime's
                         security=settings.faststream_security(),
                         log_level=logging.DEBUG, logger=logging.getLogger("faststream.broker"))

    @broker.subscriber(source, group_id=worker.group, ack_policy=AckPolicy.ACK, auto_offset_reset="earliest")
    async def one(msg: KafkaMessage) -> None:
        await worker.handle(msg.raw_message, subscription)

    async with AsyncExitStack() as stack:
        context = await worker.open(stack)
        relay = asyncio.create_task(context.relay.run())
        await broker.start()
        started = await first_processed(worker)
        await count_until(settings, sink, n)
        elapsed = time.monotonic() - started
        await broker.stop()
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
    return elapsed


async def intake_projection(settings: Settings, n: int) -> float:
    """Seconds for the intake worker to project ``n`` OrderPlaced facts.

    Each order is then paid, outside the timing: an order left unpaid is work for later. 30
    minutes on, the scheduler closes each one (a CloseOrder, the order system's OrderClosed,
    intake's projection of it), and 3,000 such closes can fall into a later run's lifecycle burst
    (after a restart on 2026-12-05 the scheduler and the order system used 6.2 CPU-s in 20
    otherwise idle seconds working through them)."""
    run = uuid.uuid4().hex[:6]
    orders = [f"BENCH-{run}-{i}" for i in range(n)]
    placed = [(oid, encode(new_envelope(OrderPlaced(
        order_id=oid, shop_id="shop-bench", buyer_id=f"b{i}", placed_at=datetime.now(UTC),
        lines=[OrderLine(line_no=1, sku="SKU-B", quantity=2, unit_price=Money.cny(1000), paid=Money.cny(1800))]),
        key=oid, producer="order-system"))) for i, oid in enumerate(orders)]  # the producer the catalogue names
    await fill(settings, "orders.events", placed)
    worker = build_intake(settings)
    app = worker.build_app()
    await app.start()
    while not worker.readiness.assignment_received:  # noqa: ASYNC110 - a flag the consumer sets; the bench reads
        await asyncio.sleep(0.001)
    started = time.monotonic()  # from the assignment: the first batch is work too (n may fit in one)
    await _processed(worker, n)
    elapsed = time.monotonic() - started
    await fill(settings, "orders.events", [(oid, encode(new_envelope(
        OrderPaid(order_id=oid, paid_at=datetime.now(UTC)), key=oid, producer="order-system"))) for oid in orders])
    await _processed(worker, 2 * n)
    await app.stop()
    return elapsed


async def _processed(worker: Worker[Any], n: int) -> None:
    while worker.processed < n:  # noqa: ASYNC110 - a counter the worker bumps; the bench only reads it
        await asyncio.sleep(0.05)


async def main(n: int) -> None:
    settings = Settings(log_level="WARNING", outbox_poll_seconds=0.05)
    from services.common.logging import configure_logging
    configure_logging("WARNING")
    await ensure_topics(settings)
    raw = await raw_relay(settings, n)
    raw_batched = await raw_batched_relay(settings, n)
    rt = await runtime_relay(settings, n)
    per_message = await faststream_per_message(settings, n)
    intake = await intake_projection(settings, n)
    print(f"messages per scenario: {n} ({PARTITIONS} partitions, one consumer, 2-core machine)")
    print(f"{'scenario':<52}{'seconds':>9}{'msg/s':>10}{'vs raw':>9}")
    for label, secs in [("raw aiokafka relay (commit per message)", raw),
                        ("raw aiokafka relay (batches, commit per batch)", raw_batched),
                        ("runtime relay (inbox + one tx per batch + outbox)", rt),
                        ("same rules, per-message FastStream subscriber", per_message),
                        ("intake worker: OrderPlaced -> projection", intake)]:
        print(f"{label:<52}{secs:>9.2f}{n / secs:>10.0f}{raw / secs:>9.2f}")
    print(f"batch path vs per-message subscriber: {per_message / rt:.1f}x the throughput")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
