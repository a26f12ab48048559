"""Dead-letter tooling on the real stack: recorded once, listed and shown by the CLI, replayed to
the source topic (twice changes nothing), cut originals read back from the source offset, and
counts per reason sent to ops."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select
from typer.testing import CliRunner

from contracts import decode, encode, new_envelope
from contracts.ops import OpsAlert, Severity
from contracts.topics import DLQ
from services.cli import app as cli
from services.common.bus import Bus
from services.common.kafka import make_producer
from services.common.routes import Subscription, route
from services.common.runtime import Unprocessable, Worker, run_due
from services.common.tables import DeadLetterRow, OutboxRow
from services.dead_letters import service as dead_letters
from services.dead_letters.repository import SqlDeadLetterUnitOfWork

from .helpers import Marks, eventually, new_topic, plain_worker, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def record_letters(stack: Any, sessions: Any, topic: str, count: int, *, marks: Marks) -> list[Any]:
    """What the dead_letters worker does with each DeadLetter, here for this topic's letters only."""
    letters = await read_topic(stack, DLQ.name, lambda e: e.payload.source_topic == topic, count, since=marks)
    deps = dead_letters.Deps(stack, lambda: datetime.now(UTC))
    name = f"dead_letters-it-{uuid.uuid4().hex[:6]}"
    for letter in letters:
        async with SqlDeadLetterUnitOfWork(sessions, name) as uow:
            await dead_letters.record(letter, uow, deps)
            await uow.commit()
    return letters


def cli_run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_dead_letter_is_listed_shown_and_replayed_once_its_cause_is_fixed(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-replay-{uuid.uuid4().hex[:6]}"
    known: set[str] = set()
    applied: list[str] = []

    async def needs_a_known_order(envelope: Any, uow: Any, deps: Any) -> None:
        if envelope.key not in known:
            raise Unprocessable(f"order {envelope.key} unknown", code="UNKNOWN_ORDER")
        applied.append(envelope.key)
        uow.publish(OpsAlert(kind="TEST", severity=Severity.INFO, message="ok", order_id=envelope.key),
                    key=envelope.key)

    worker = plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, needs_a_known_order)])])
    app = worker.build_app()
    await app.start()
    key = f"O-{uuid.uuid4().hex[:8]}"
    try:
        async with Bus(stack) as bus:
            message = new_envelope(OpsAlert(kind="TEST", severity=Severity.INFO, message="x", order_id=key),
                                   key=key, producer="t")
            await bus.send_raw(topic, encode(message), key=key)
        [letter] = await record_letters(stack, sessions, topic, 1, marks=marks)
        letter_id = str(letter.event_id)
        listed = await asyncio.to_thread(cli_run, "dlq", "list", "--topic", topic, "--reason", "UNKNOWN_ORDER")
        shown = await asyncio.to_thread(cli_run, "dlq", "show", letter_id)
        assert letter_id in listed
        assert "1 dead letter(s)" in listed
        assert str(message.event_id) in shown
        assert "UNKNOWN_ORDER" in shown

        known.add(key)  # the cause is fixed
        first = await asyncio.to_thread(cli_run, "dlq", "replay", letter_id)
        await eventually(lambda: _applied(applied, 1))
        second = await asyncio.to_thread(cli_run, "dlq", "replay", letter_id)
        forced = await asyncio.to_thread(cli_run, "dlq", "replay", letter_id, "--force")
        await eventually(lambda: _duplicates(worker, 1))  # the forced copy was consumed
    finally:
        await app.stop()
    assert "1 of 1 replayed" in first
    assert "already replayed" in second
    assert "1 of 1 replayed" in forced
    assert applied == [key]  # the forced copy found the event in the inbox


async def _applied(applied: list[str], n: int) -> bool:
    return len(applied) >= n


async def _duplicates(worker: Worker, n: int) -> bool:
    return worker.counts["duplicates"] >= n


async def test_a_cut_original_is_read_back_from_its_source_offset_for_replay(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-cut-{uuid.uuid4().hex[:6]}"
    app = plain_worker(name, stack, [Subscription(topic, [])]).build_app()
    await app.start()
    poison = b"[" + b"0," * 200_000 + b"0]"
    try:
        async with Bus(stack) as bus:
            await bus.send_raw(topic, poison, key="O-cut")
        [letter] = await record_letters(stack, sessions, topic, 1, marks=marks)
    finally:
        await app.stop()
    assert letter.payload.original_truncated
    sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(target: str, key: bytes | None, value: bytes) -> None:
        sent.append((target, key, value))

    outcome = await dead_letters.replay(sessions, stack, send, letter.event_id)
    assert outcome.outcome == "replayed"
    assert sent == [(topic, b"O-cut", poison)]


async def test_dead_letter_counts_per_reason_go_to_ops(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    app = plain_worker(f"t-count-{uuid.uuid4().hex[:6]}", stack, [Subscription(topic, [])]).build_app()
    await app.start()
    try:
        async with Bus(stack) as bus:
            for value in (b"{", b"[", b'{"type": "Nope", "schema_version": 1}'):
                await bus.send_raw(topic, value, key="O-count")
        await record_letters(stack, sessions, topic, 3, marks=marks)
    finally:
        await app.stop()
    name = f"dead_letters-it-{uuid.uuid4().hex[:6]}"
    job = dead_letters.summarize(dead_letters.Deps(stack, lambda: datetime.now(UTC)))
    units = partial(SqlDeadLetterUnitOfWork, sessions, name)
    while await run_due(units, job):  # other runs' letters are summarized too
        pass
    async with sessions() as session:
        values = (await session.execute(select(OutboxRow.value).where(
            OutboxRow.producer == name, OutboxRow.type == "DeadLetterSummary"))).scalars().all()
        pending = (await session.execute(select(DeadLetterRow.dead_letter_id).where(
            DeadLetterRow.source_topic == topic, DeadLetterRow.summarized.is_(False)))).all()
    counts = {(c.reason_code, c.count) for v in values for c in decode(v).payload.counts if c.source_topic == topic}
    assert counts == {("MALFORMED_JSON", 2), ("UNKNOWN_TYPE", 1)}
    assert pending == []


async def test_replaying_sends_the_original_key_and_bytes(stack, sessions, marks):
    """The replay producer writes exactly what was dead-lettered: same key bytes, same value."""
    topic = await new_topic(stack, partitions=1)
    app = plain_worker(f"t-bytes-{uuid.uuid4().hex[:6]}", stack, [Subscription(topic, [])]).build_app()
    await app.start()
    try:
        async with Bus(stack) as bus:
            await bus.send_raw(topic, b"\xff not utf-8", key=b"\xfe\x01")
        [letter] = await record_letters(stack, sessions, topic, 1, marks=marks)
    finally:
        await app.stop()
    producer = make_producer(stack, "replay-it")
    await producer.start()
    try:
        async def send(target: str, key: bytes | None, value: bytes) -> None:
            await producer.send_and_wait(target, value, key=key)
        assert (await dead_letters.replay(sessions, stack, send, letter.event_id)).outcome == "replayed"
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, **stack.kafka_client(),
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        records: list[Any] = []
        while len(records) < 2:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "the replayed copy never arrived"
            records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in records] == [(b"\xfe\x01", b"\xff not utf-8")] * 2
