"""The outbox relay on the real Kafka and PostgreSQL: rows a worker hands over after its commit
leave without being read back, and the table still comes first whenever rows may wait in it that
nobody holds (partitions just assigned, a failed send), so the order per key holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import func, select

from contracts.ops import OpsAlert, Severity
from services.common.kafka import Producer
from services.common.outbox import OutboxMessage, OutboxRelay
from services.common.settings import Settings
from services.common.tables import OutboxRow
from services.common.uow import SqlUnitOfWork

from .helpers import Statements, new_topic, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = "O-same"


async def commit(sessions: Any, producer: str, topic: str, numbers: range) -> list[OutboxMessage]:
    """One transaction publishing an alert per number, all for one key; returns its outbox rows."""
    async with SqlUnitOfWork(sessions, producer) as uow:
        for n in numbers:
            uow.publish(OpsAlert(kind="TEST", severity=Severity.INFO, message=f"n={n:02d}", order_id=KEY),
                        key=KEY, topic=topic)
        await uow.commit()
    return uow.outgoing


async def pending(sessions: Any, producer: str) -> int:
    async with sessions() as session:
        return (await session.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.producer == producer, OutboxRow.published_at.is_(None)))).scalar_one()


@asynccontextmanager
async def relaying(stack: Settings, sessions: Any, name: str, wrap: Callable[[Producer], Any] = lambda p: p,
                   read_every_seconds: float = 600) -> AsyncIterator[OutboxRelay]:
    """A relay whose table is drained (nothing of ``name`` waits), that reads the table only when
    asked or idle (unless told to read it often), running until the block ends."""
    producer = Producer(stack, client_id=name)
    await producer.start()
    relay = OutboxRelay(name, sessions, wrap(producer), batch=50, poll_seconds=60.0,
                        read_every_seconds=read_every_seconds)
    await relay.relay_once()
    task = asyncio.create_task(relay.run())
    while not relay._running:  # noqa: ASYNC110 - a flag its loop sets: it keeps what is handed over from then on
        await asyncio.sleep(0)
    try:
        yield relay
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()


async def messages(stack: Settings, topic: str, count: int) -> list[str]:
    return [e.payload.message for e in await read_topic(stack, topic, lambda e: True, count, settle=1.0, since={})]


async def test_rows_handed_over_leave_in_commit_order_without_being_read_back(stack, sessions):
    name = f"t-hand-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(stack, partitions=3)
    async with relaying(stack, sessions, name) as relay:
        with Statements(sessions) as statements:
            for first in (0, 4, 8):
                relay.hand_over(await commit(sessions, name, topic, range(first, first + 4)))
            assert await messages(stack, topic, 12) == [f"n={n:02d}" for n in range(12)]
    reads = [s for s in statements.sent if s.lstrip().upper().startswith("SELECT") and "outbox" in s]
    assert reads == []
    assert await pending(sessions, name) == 0  # marked published, by event id


async def test_after_an_assignment_the_rows_another_process_committed_leave_first(stack, sessions):
    name = f"t-assign-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(stack, partitions=3)
    async with relaying(stack, sessions, name) as relay:
        await commit(sessions, name, topic, range(0, 5))  # the previous owner's rows, held by nobody here
        relay.read_table_first()  # partitions assigned
        relay.hand_over(await commit(sessions, name, topic, range(5, 10)))
        assert await messages(stack, topic, 10) == [f"n={n:02d}" for n in range(10)]
    assert await pending(sessions, name) == 0


async def test_rows_handed_over_leave_while_another_process_holds_the_table(stack, sessions):
    """The table's reads are due all the time here, and another process holds its lock: the
    relay leaves the reading to that process and sends what it was handed."""
    name = f"t-busy-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(stack, partitions=3)
    async with relaying(stack, sessions, name, read_every_seconds=0.0) as relay, sessions() as other:
        await other.execute(select(func.pg_advisory_lock(relay._lock_key)))
        try:
            relay.hand_over(await commit(sessions, name, topic, range(0, 5)))
            assert await messages(stack, topic, 5) == [f"n={n:02d}" for n in range(5)]
        finally:
            await other.execute(select(func.pg_advisory_unlock(relay._lock_key)))


class FailingOnce:
    """The real producer, whose first send fails as when the broker is unreachable."""

    def __init__(self, real: Producer) -> None:
        self.real = real
        self.failed = False

    async def send_batch(self, messages: list[Any]) -> None:
        if not self.failed:
            self.failed = True
            raise KafkaConnectionError("broker unreachable")
        await self.real.send_batch(messages)


async def test_rows_whose_send_failed_are_read_from_the_table_before_later_rows(stack, sessions):
    name = f"t-fail-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(stack, partitions=3)
    async with relaying(stack, sessions, name, wrap=FailingOnce) as relay:
        relay.hand_over(await commit(sessions, name, topic, range(0, 5)))
        relay.hand_over(await commit(sessions, name, topic, range(5, 10)))
        assert await messages(stack, topic, 10) == [f"n={n:02d}" for n in range(10)]
    assert await pending(sessions, name) == 0


class Recording:
    """The real producer, counting the messages the broker has acknowledged."""

    def __init__(self, real: Producer) -> None:
        self.real = real
        self.acknowledged = 0

    async def send_batch(self, messages: list[Any]) -> None:
        await self.real.send_batch(messages)
        self.acknowledged += len(messages)


async def test_a_flush_returns_once_the_broker_has_every_row_handed_over(stack, sessions):
    name = f"t-flush-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(stack, partitions=3)
    recording: list[Recording] = []

    def wrap(producer: Producer) -> Recording:
        recording.append(Recording(producer))
        return recording[0]

    async with relaying(stack, sessions, name, wrap=wrap) as relay:
        relay.hand_over(await commit(sessions, name, topic, range(0, 5)))
        await relay.flush(timeout=10)
        assert recording[0].acknowledged == 5

