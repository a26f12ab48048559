"""The shared runtime on the real Kafka and PostgreSQL: inbox, manual offsets, outbox, DLQ."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from contracts import encode, new_envelope
from contracts.ops import OpsAlert, Severity
from contracts.topics import DLQ
from services.common.bus import Bus
from services.common.kafka import Producer
from services.common.outbox import OutboxRelay
from services.common.routes import Subscription, route
from services.common.runtime import Worker
from services.common.tables import OutboxRow
from services.domain.errors import IllegalTransition

from .helpers import eventually, new_topic, outbox_count, plain_worker, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")


def alert(order_id: str, text: str = "probe") -> OpsAlert:
    return OpsAlert(kind="TEST", severity=Severity.INFO, message=text, order_id=order_id)


def echo_handler(calls: list[str]):
    """Writes one outbox row per applied message: the observable effect."""
    async def handle(envelope: Any, uow: Any, deps: Any) -> None:
        calls.append(envelope.key)
        uow.publish(alert(envelope.key, f"seen {envelope.event_id}"), key=envelope.key)
    return handle


async def started(worker: Worker[Any]):  # type: ignore[no-untyped-def]
    app = worker.build_app()
    await app.start()
    return app


async def test_a_redelivered_message_is_applied_once(stack, sessions):
    topic = await new_topic(stack)
    name = f"t-redeliver-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    app = await started(plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, echo_handler(calls))])]))
    try:
        envelope = new_envelope(alert("O-r1"), key="O-r1", producer="test")
        async with Bus(stack) as bus:
            for _ in range(3):
                await bus.send_raw(topic, encode(envelope), key="O-r1")
        await eventually(lambda: _done(calls, 1))
        await asyncio.sleep(1.0)
        assert await outbox_count(sessions, name) == 1
    finally:
        await app.stop()


async def _done(calls: list[str], n: int) -> bool:
    return len(calls) >= n


async def test_a_crash_between_db_commit_and_offset_commit_creates_no_duplicate(stack, sessions):
    """Consumer 1 applies the message (DB commit) and dies before committing the offset;
    consumer 2 in the same group gets it again and the inbox makes that a no-op."""
    topic = await new_topic(stack, partitions=1)
    name = f"t-crash-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    sub = Subscription(topic, [route(OpsAlert, echo_handler(calls))])
    worker = plain_worker(name, stack, [sub])
    async with AsyncExitStack() as resources:
        await worker.open(resources)
        async with Bus(stack) as bus:
            await bus.send_raw(topic, encode(new_envelope(alert("O-c1"), key="O-c1", producer="t")), key="O-c1")
        for attempt in range(2):
            consumer = AIOKafkaConsumer(topic, **stack.kafka_client(),
                                        group_id=worker.group, enable_auto_commit=False,
                                        auto_offset_reset="earliest")
            await consumer.start()
            record = await asyncio.wait_for(consumer.getone(), 20)
            await worker.handle(record, sub)
            if attempt == 0:
                await consumer.stop()  # crash: the offset was never committed
            else:
                await consumer.commit()
                await consumer.stop()
    assert calls == ["O-c1"]
    assert await outbox_count(sessions, name) == 1


async def test_a_crash_after_a_batch_commit_creates_no_duplicate(stack, sessions):
    topic = await new_topic(stack, partitions=1)
    name = f"t-crashb-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    sub = Subscription(topic, [route(OpsAlert, echo_handler(calls))])
    worker = plain_worker(name, stack, [sub])
    keys = [f"O-b{i}" for i in range(5)]
    async with AsyncExitStack() as resources:
        await worker.open(resources)
        async with Bus(stack) as bus:
            for key in keys:
                await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)
        for attempt in range(2):
            consumer = AIOKafkaConsumer(topic, **stack.kafka_client(),
                                        group_id=worker.group, enable_auto_commit=False,
                                        auto_offset_reset="earliest")
            await consumer.start()
            records: list[Any] = []
            while len(records) < 5:
                batch = await consumer.getmany(timeout_ms=1000)
                records += [r for rs in batch.values() for r in rs]
            await worker.handle_batch(tuple(records), {topic: sub})
            if attempt == 1:
                await consumer.commit()
            await consumer.stop()  # attempt 0: crash before the offset commit
    assert calls == keys  # applied once; the redelivered batch found every id in the inbox
    assert await outbox_count(sessions, name) == 5


async def test_messages_a_route_does_not_act_on_are_skipped_without_a_transaction_or_an_inbox_row(stack, sessions):
    """A route's ``only`` leaves out the messages of its type that the use case would ignore: in a
    batch and alone, they reach no handler and leave no inbox row, as a type with no route."""
    from services.common.tables import InboxRow

    topic = await new_topic(stack, partitions=1)
    name = f"t-only-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    sub = Subscription(topic, [route(OpsAlert, echo_handler(calls), only=lambda a: a.severity is Severity.CRITICAL)])
    worker = plain_worker(name, stack, [sub])
    sent = [("O-o1", Severity.INFO), ("O-o2", Severity.CRITICAL), ("O-o3", Severity.INFO), ("O-o4", Severity.INFO)]
    async with AsyncExitStack() as resources:
        await worker.open(resources)
        async with Bus(stack) as bus:
            for key, severity in sent:
                probe = OpsAlert(kind="TEST", severity=severity, message="probe", order_id=key)
                await bus.send_raw(topic, encode(new_envelope(probe, key=key, producer="t")), key=key)
        consumer = AIOKafkaConsumer(topic, **stack.kafka_client(), group_id=worker.group, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        records: list[Any] = []
        while len(records) < len(sent):
            batch = await consumer.getmany(timeout_ms=1000)
            records += [r for rs in batch.values() for r in rs]
        await consumer.stop()
        await worker.handle_batch(tuple(records[:3]), {topic: sub})  # two skipped, one applied
        await worker.handle_batch(tuple(records[2:3] + records[3:]), {topic: sub})  # none to act on
        await worker.handle(records[3], sub)  # alone
    assert calls == ["O-o2"]
    async with sessions() as session:
        recorded = (await session.execute(select(func.count()).select_from(InboxRow).where(
            InboxRow.consumer == worker.group))).scalar_one()
    assert recorded == 1


async def test_a_worker_nobody_waits_on_gathers_events_that_come_apart_into_one_batch(stack, sessions):
    """A worker that is not prompt lets the broker hold its fetch for ``gather_wait_ms``: events
    published 50 ms apart are applied together, in one transaction, instead of one each."""
    topic = await new_topic(stack, partitions=1)
    name = f"t-gather-{uuid.uuid4().hex[:6]}"
    batches: list[Any] = []  # the unit of work each event was applied in: one per transaction (kept alive)

    async def record(envelope: Any, uow: Any, deps: Any) -> None:
        batches.append(uow)

    settings = stack.model_copy(update={"gather_wait_ms": 2000})
    app = await started(plain_worker(name, settings, [Subscription(topic, [route(OpsAlert, record)])], prompt=False))
    try:
        async with Bus(stack) as bus:
            await bus.send_raw(topic, encode(new_envelope(alert("O-g0"), key="O-g0", producer="t")), key="O-g0")
            await eventually(lambda: _done(batches, 1))  # joined and caught up: what follows is gathered
            for i in range(1, 6):
                key = f"O-g{i}"
                await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)
                await asyncio.sleep(0.05)
        await eventually(lambda: _done(batches, 6))
    finally:
        await app.stop()
    assert len({id(uow) for uow in batches[1:]}) <= 2  # one fetch, or two if a held fetch ended between the sends


async def test_malformed_messages_go_to_the_dlq_with_a_reason_and_the_consumer_keeps_going(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-dlq-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    app = await started(plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, echo_handler(calls))])]))
    try:
        key = f"O-{uuid.uuid4().hex[:8]}"
        async with Bus(stack) as bus:
            await bus.send_raw(topic, b"{definitely not json", key=key)
            await bus.send_raw(topic, b'{"type": "OpsAlert", "schema_version": 1, "payload": {"kind": 5}}', key=key)
            await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)
        letters = await read_topic(stack, DLQ.name, lambda e: e.payload.original_key == key, 2, since=marks)
        assert {e.payload.reason_code for e in letters} == {"MALFORMED_JSON", "SCHEMA_VIOLATION"}
        assert all(e.payload.source_topic == topic and e.payload.consumer_group == f"aftersales.{name}"
                   for e in letters)
        assert letters[0].payload.original_value == "{definitely not json"
        assert letters[0].payload.offset == 0
        assert letters[1].payload.offset == 1
        await eventually(lambda: _done(calls, 1))
    finally:
        await app.stop()


async def test_infrastructure_errors_are_retried_until_they_pass_and_never_dead_lettered(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-retry-{uuid.uuid4().hex[:6]}"
    attempts: dict[str, int] = {}

    async def flaky(envelope: Any, uow: Any, deps: Any) -> None:
        attempts[envelope.key] = attempts.get(envelope.key, 0) + 1
        uow.publish(alert(envelope.key), key=envelope.key)  # must not survive a failed attempt
        if attempts[envelope.key] <= 8:  # more tries than the old limit of retries before the DLQ
            raise ConnectionResetError("database went away")

    settings = stack.with_changes(retry_backoff_seconds=0.01, retry_backoff_max_seconds=0.05)
    app = await started(plain_worker(name, settings, [Subscription(topic, [route(OpsAlert, flaky)])]))
    try:
        key = f"flaky-{uuid.uuid4().hex[:6]}"
        async with Bus(stack) as bus:
            await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)
        await eventually(lambda: _count(sessions, name, 1))
        assert attempts[key] == 9
        assert await read_topic(stack, DLQ.name, lambda e: e.payload.source_topic == topic, 1, timeout=2,
                                since=marks) == []
        assert await outbox_count(sessions, name) == 1  # only the successful attempt wrote
    finally:
        await app.stop()


async def test_a_deterministic_error_is_dead_lettered_at_once_without_its_text(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-bug-{uuid.uuid4().hex[:6]}"
    attempts: list[str] = []

    async def trips(envelope: Any, uow: Any, deps: Any) -> None:
        attempts.append(envelope.key)
        raise AssertionError("buyer 13800001111 said something")

    app = await started(plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, trips)])]))
    try:
        key = f"bug-{uuid.uuid4().hex[:6]}"
        async with Bus(stack) as bus:
            await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)
        letters = await read_topic(stack, DLQ.name, lambda e: e.payload.source_topic == topic, 1, since=marks)
        assert letters[0].payload.reason_code == "HANDLER_ERROR"
        assert letters[0].payload.attempts == 1
        assert attempts == [key]
        assert "13800001111" not in letters[0].payload.reason
    finally:
        await app.stop()


async def test_a_domain_refusal_writes_nothing_but_the_rejection(stack, sessions):
    topic = await new_topic(stack, partitions=1)
    name = f"t-reject-{uuid.uuid4().hex[:6]}"

    async def refuses(envelope: Any, uow: Any, deps: Any) -> None:
        uow.publish(alert(envelope.key, "partial write"), key=envelope.key)
        raise IllegalTransition("Cannot approve: ticket is CLOSED.")

    def rejection(envelope: Any, err: Any) -> OpsAlert:
        return alert(envelope.key, f"rejected {err.code}")

    app = await started(plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, refuses)],
                                                                on_rejected=rejection)]))
    try:
        key = f"O-{uuid.uuid4().hex[:8]}"
        async with Bus(stack) as bus:
            await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)
        await eventually(lambda: _count(sessions, name, 1))
        async with sessions() as session:
            values = (await session.execute(select(OutboxRow.value).where(OutboxRow.producer == name))).scalars().all()
        assert len(values) == 1
        assert b"rejected ILLEGAL_TRANSITION" in values[0]
    finally:
        await app.stop()


async def _count(sessions: Any, name: str, n: int) -> bool:
    return await outbox_count(sessions, name) >= n


async def test_an_outbox_row_is_published_exactly_once_across_relay_restarts(stack, sessions):
    name = f"t-relay-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(stack, partitions=3)
    ids = []
    async with sessions() as session, session.begin():
        for i in range(25):
            env = new_envelope(alert(f"O-{i % 5}"), key=f"O-{i % 5}", producer=name)
            ids.append(env.event_id)
            session.add(OutboxRow(producer=name, topic=topic, key=env.key, event_id=env.event_id,
                                  type=env.type, value=encode(env)))
    for _ in range(3):  # three relay processes in turn, each stopped after one small batch
        producer = Producer(stack, client_id=name)
        await producer.start()
        try:
            await OutboxRelay(name, sessions, producer, batch=7).relay_once()
        finally:
            await producer.stop()
    producer = Producer(stack, client_id=name)
    await producer.start()
    relay = OutboxRelay(name, sessions, producer, batch=7)
    task = asyncio.create_task(relay.run())
    try:
        seen = await read_topic(stack, topic, lambda e: True, 25, settle=1.5, since={})
    finally:
        task.cancel()
        await producer.stop()
    assert sorted(e.event_id for e in seen) == sorted(ids)
    async with sessions() as session:
        pending = (await session.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.producer == name, OutboxRow.published_at.is_(None)))).scalar_one()
    assert pending == 0


async def test_relayed_messages_keep_their_order_per_key(stack, sessions):
    name = f"t-order-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(stack, partitions=3)
    async with sessions() as session, session.begin():
        for i in range(30):
            env = new_envelope(alert("O-same", f"n={i:02d}"), key="O-same", producer=name)
            session.add(OutboxRow(producer=name, topic=topic, key=env.key, event_id=env.event_id,
                                  type=env.type, value=encode(env)))
    producer = Producer(stack, client_id=name)
    await producer.start()
    try:
        relay = OutboxRelay(name, sessions, producer, batch=8)
        while await relay.relay_once():
            pass
    finally:
        await producer.stop()
    seen = await read_topic(stack, topic, lambda e: True, 30, since={})
    assert [e.payload.message for e in seen] == [f"n={i:02d}" for i in range(30)]


async def test_two_relays_never_publish_the_same_rows_concurrently(stack, sessions):
    name = f"t-2relays-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(stack, partitions=1)
    async with sessions() as session, session.begin():
        for i in range(40):
            env = new_envelope(alert("O-x", str(i)), key="O-x", producer=name)
            session.add(OutboxRow(producer=name, topic=topic, key=env.key, event_id=env.event_id,
                                  type=env.type, value=encode(env)))
    producers = [Producer(stack, client_id=f"{name}-{i}") for i in range(2)]
    for p in producers:
        await p.start()
    try:
        relays = [OutboxRelay(name, sessions, p, batch=5) for p in producers]

        async def drain(relay: OutboxRelay) -> None:
            for _ in range(30):
                await relay.relay_once()
                await asyncio.sleep(0)
        await asyncio.gather(*(drain(r) for r in relays))
    finally:
        for p in producers:
            await p.stop()
    seen = await read_topic(stack, topic, lambda e: True, 40, settle=1.0, since={})
    assert len(seen) == 40
    assert len({e.event_id for e in seen}) == 40


async def test_old_inbox_entries_are_forgotten_after_the_retention(stack, sessions):
    from datetime import UTC, datetime, timedelta

    from services.common.tables import InboxRow

    group = f"t-inbox-{uuid.uuid4().hex[:6]}"
    old, recent = uuid.uuid4(), uuid.uuid4()
    async with sessions() as session, session.begin():
        session.add(InboxRow(consumer=group, event_id=old, processed_at=datetime.now(UTC) - timedelta(days=9)))
        session.add(InboxRow(consumer=group, event_id=recent))
    producer = Producer(stack, client_id=group)
    relay = OutboxRelay(group, sessions, producer, consumer_group=group)
    await relay.forget_processed(older_than=timedelta(days=8))
    async with sessions() as session:
        kept = (await session.execute(select(InboxRow.event_id).where(InboxRow.consumer == group))).scalars().all()
    assert kept == [recent]
