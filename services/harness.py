"""What the chaos and fuzz runs share: a recorder of every topic, the consumer lag of every
worker group, and the result table (they publish through the Bus).

Why not the Watcher: a run drives thousands of flows at once, so a waiter must wake only for its
own order (the Watcher wakes every waiter on every message). The checkers read only what the
recorder saw and the payment simulator's own records.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from contracts import CATALOGUE, Envelope, InvalidMessage, decode

from .common.failures import describe
from .common.logging import get_logger
from .common.settings import Settings

log = get_logger("harness")


@dataclass
class _Waiter:
    predicate: Callable[[Envelope[Any]], bool]
    future: asyncio.Future[Envelope[Any]]


class Recorder:
    """Consumes every catalogue topic from the offsets it finds at start; keeps each envelope once."""

    def __init__(self, settings: Settings, topics: Iterable[str] | None = None) -> None:
        self.settings = settings
        self.topics = list(topics or (t.name for t in CATALOGUE))
        self.by_key: dict[str, list[Envelope[Any]]] = defaultdict(list)
        self._ids: set[tuple[str, uuid.UUID]] = set()
        self._waiters: dict[str, list[_Waiter]] = defaultdict(list)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Recorder:
        self._consumer = AIOKafkaConsumer(
            *self.topics, **self.settings.kafka_client(), group_id=None,
            auto_offset_reset="latest", enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024)
        await self._consumer.start()
        for tp in self._consumer.assignment():  # pin 'latest' now, before anything is published
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run(self._consumer))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            except KafkaError as exc:  # a broker restart: the consumer reconnects by itself
                log.warning("recorder_waiting_for_broker", error=describe(exc))
                await asyncio.sleep(1)
                continue
            for records in batch.values():
                for record in records:
                    self._add(record)

    def _add(self, record: Any) -> None:
        try:
            envelope: Envelope[Any] | None = decode(record.value)
        except InvalidMessage:
            envelope = None
        if envelope is None or (record.topic, envelope.event_id) in self._ids:
            return  # not an envelope (hostile input), or an at-least-once copy (same event id)
        self._ids.add((record.topic, envelope.event_id))
        self.by_key[envelope.key].append(envelope)
        waiters = self._waiters.get(envelope.key)
        if waiters:
            for waiter in list(waiters):
                if not waiter.future.done() and waiter.predicate(envelope):
                    waiter.future.set_result(envelope)
                    waiters.remove(waiter)

    async def wait_for(self, key: str, predicate: Callable[[Envelope[Any]], bool], timeout: float) -> Envelope[Any]:
        for envelope in self.by_key.get(key, []):
            if predicate(envelope):
                return envelope
        waiter = _Waiter(predicate, asyncio.get_running_loop().create_future())
        self._waiters[key].append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        finally:
            if waiter in self._waiters.get(key, []):
                self._waiters[key].remove(waiter)

    def of_type(self, *types: str) -> list[Envelope[Any]]:
        return [e for envs in self.by_key.values() for e in envs if e.type in types]


async def consumer_lag(settings: Settings, groups: Iterable[str]) -> dict[str, int]:
    """Messages not yet committed, per consumer group, over every partition it has offsets for."""
    admin = AIOKafkaAdminClient(**settings.kafka_client())
    consumer = AIOKafkaConsumer(**settings.kafka_client(), group_id=None)
    await admin.start()
    await consumer.start()
    try:
        lag: dict[str, int] = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                lag[group] = 0
                continue
            ends = await consumer.end_offsets(list(committed))
            lag[group] = sum(max(ends[tp] - meta.offset, 0) for tp, meta in committed.items() if meta.offset >= 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def wait_for_no_lag(settings: Settings, groups: list[str], timeout: float) -> dict[str, int]:
    """Waits until every group has committed everything; returns the lag that is left."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        lag = await consumer_lag(settings, groups)
        if not any(lag.values()) or asyncio.get_running_loop().time() > deadline:
            return lag
        await asyncio.sleep(1)


@dataclass
class Check:
    name: str
    violations: int
    detail: str = ""
    examples: list[str] = field(default_factory=list)


def print_checks(title: str, figures: list[tuple[str, Any]], checks: list[Check]) -> int:
    """Prints the run's figures and each invariant with its violation count; returns the total."""
    print(f"\n{title}")
    width = max(len(n) for n, _ in figures + [(c.name, 0) for c in checks]) + 2
    for name, value in figures:
        print(f"  {name:<{width}} {value}")
    print(f"  {'invariant':<{width}} violations")
    for check in checks:
        print(f"  {check.name:<{width}} {check.violations:>10}  {check.detail}")
        for example in check.examples[:3]:
            print(f"  {'':<{width}}   e.g. {example}")
    total = sum(c.violations for c in checks)
    print(f"  {'TOTAL':<{width}} {total:>10}")
    return total


async def quiet(settings: Settings, workers: Iterable[str], timeout: float) -> bool:
    """Waits until these workers have read everything on their topics and relayed everything in
    their outboxes, twice in a row (a message relayed between the two looks is read by the second);
    False if they did not within ``timeout``. What a rebuild from the log is compared against."""
    from sqlalchemy import func, select

    from .common.db import make_engine
    from .common.tables import OutboxRow

    names = sorted(set(workers))
    groups = [settings.group(name) for name in names]
    engine = make_engine(settings)
    deadline = asyncio.get_running_loop().time() + timeout
    calm = 0
    try:
        while calm < 2:
            async with engine.connect() as connection:
                waiting = (await connection.execute(select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.producer.in_(names), OutboxRow.published_at.is_(None)))).scalar_one()
            lagging = any((await consumer_lag(settings, groups)).values())
            calm = calm + 1 if not waiting and not lagging else 0
            if asyncio.get_running_loop().time() > deadline:
                return False
            if calm < 2:
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    return True

