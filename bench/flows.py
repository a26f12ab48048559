"""Whole refund-only flows through every worker process: tickets per second and the latency
from the buyer's request to the refund being paid, with a raw aiokafka round trip measured in
the same run as the baseline for one hop.

Each flow crosses 7 Kafka hops (request → intake → review → finance → payment channel →
finance → ticket completed), each a consume, a PostgreSQL transaction and an outbox relay.

Usage: python -m bench.flows [N]   (from the checkout; needs the stack: bash deploy/local/up.sh;
source .local/env)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.run import _orders, buyer_of, refunds_of
from contracts import CATALOGUE, encode, new_envelope
from contracts.ops import OpsAlert, Severity
from services.actors import World, projection_probe
from services.common.bus import Bus, Watcher
from services.common.db import make_engine, make_session_factory
from services.common.kafka import ensure_topics, make_producer
from services.common.procs import ALL_WORKERS, WorkerProcesses
from services.common.settings import Settings

ENV = {"AFTERSALES_SHOP_POLICIES": json.dumps({"shop-bench": {"finance_auto_approve_refund_only": True}}),
       "AFTERSALES_LOG_LEVEL": "WARNING", "AFTERSALES_OUTBOX_POLL_SECONDS": "0.2"}


async def raw_round_trip(settings: Settings, samples: int = 50) -> float:
    """Median time for one message to be produced (acks=all) and consumed: one bare hop."""
    topic = "ops.alerts"
    consumer = AIOKafkaConsumer(topic, **settings.kafka_client(),
                                group_id=f"bench-rtt-{uuid.uuid4()}", auto_offset_reset="latest")
    producer = make_producer(settings, "bench-rtt")
    await consumer.start()
    await producer.start()
    while not consumer.assignment():  # noqa: ASYNC110 - aiokafka signals no event for the first assignment
        await asyncio.sleep(0.05)
    for tp in consumer.assignment():
        await consumer.position(tp)
    times = []
    for i in range(samples):
        key = f"rtt-{uuid.uuid4().hex[:6]}"
        value = encode(new_envelope(OpsAlert(kind="RTT", severity=Severity.INFO, message=str(i), order_id=key),
                                    key=key, producer="bench"))
        started = time.monotonic()
        await producer.send_and_wait(topic, value, key=key.encode())
        while True:
            record = await consumer.getone()
            if record.key == key.encode():
                break
        times.append(time.monotonic() - started)
    await consumer.stop()
    await producer.stop()
    return statistics.median(times)


async def main(n: int) -> None:
    settings = Settings(log_level="WARNING")
    await ensure_topics(settings)
    hop = await raw_round_trip(settings)
    procs = WorkerProcesses(ALL_WORKERS, Path(".local/logs/bench"), env=ENV)
    procs.start()
    engine = make_engine(settings)
    try:
        async with Bus(settings, "bench") as bus, Watcher(settings, [t.name for t in CATALOGUE]) as watcher:
            world = World(bus, watcher, projection_probe(make_session_factory(engine)))
            (warm,) = await _orders(world, 1, "PAID")
            await world.request(warm, "REFUND_ONLY", [(1, 1)], buyer=buyer_of(warm))
            await world.status(await world.opened(warm, timeout=60), "COMPLETED", timeout=60)

            orders = await _orders(world, n, "PAID")
            elapsed, burst = await refunds_of(world, orders, [(1, 2)], timeout=300)
            latencies = sorted(burst)

            alone = []  # one ticket at a time: latency without queueing
            for oid in await _orders(world, 10, "PAID"):
                asked = time.monotonic()
                await world.request(oid, "REFUND_ONLY", [(1, 1)], buyer=buyer_of(oid))
                ticket = await world.opened(oid, timeout=300)
                await world.status(ticket, "COMPLETED", timeout=300)
                alone.append(time.monotonic() - asked)
    finally:
        procs.stop()
        await engine.dispose()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"{n} refund-only tickets at once, request -> refunded, 11 worker processes on 2 cores")
    print(f"  throughput           {n / elapsed:8.1f} tickets/s  ({elapsed:.2f} s)")
    print(f"  latency p50 / p95    {p50 * 1000:8.0f} / {p95 * 1000:.0f} ms")
    single = statistics.median(alone)
    print(f"  one at a time p50    {single * 1000:8.0f} ms")
    print(f"  raw aiokafka hop     {hop * 1000:8.1f} ms  (baseline, same run)")
    print(f"  one ticket / 7 hops  {single / (7 * hop):8.1f}x the bare Kafka path")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
