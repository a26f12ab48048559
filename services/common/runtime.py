"""How every worker consumes: decode → inbox → handler → one DB commit → Kafka offset commit.

- Offsets are committed manually, only after the handler's transaction committed (or the
  message was dead-lettered): FastStream's default (ack first) would lose messages on failure.
  They are committed in small batches (every N messages or T seconds): a crash redelivers at
  most that many already-applied messages, which the inbox turns into no-ops.
- A fetched batch is applied in one transaction (one inbox insert for all ids, one fsync'd
  commit). If any message in it is refused, invalid or fails, the batch is rolled back and
  replayed one message at a time with the rules below, so the rare case stays exact.
- A redelivered message finds its event id in the inbox and changes nothing.
- A domain rule refusing the message (``DomainError``) rolls everything back and writes,
  in a fresh transaction, only the inbox entry and a rejection event with the reason.
- Malformed or schema-violating messages go straight to the dead-letter topic.
- Other errors (database down, deadlock, broker hiccup) are retried with backoff, then the
  message goes to the dead-letter topic with its error class and reason.
- If even the dead-letter topic cannot be written, the worker stops without committing, so
  the message is redelivered to whoever takes over the partition.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts import Contract, Envelope, InvalidMessage, decode, encode, new_envelope
from contracts.ops import DeadLetter
from contracts.topics import DLQ
from services.domain.errors import DomainError

from .db import make_engine, make_session_factory
from .kafka import make_producer
from .logging import configure_logging, get_logger
from .migrations_check import require_current_schema
from .outbox import OutboxRelay
from .settings import Settings
from .uow import UnitOfWork

log = get_logger("runtime")

Handler = Callable[[Envelope[Any], UnitOfWork], Awaitable[None]]
Rejector = Callable[[Envelope[Any], DomainError], Contract]


UseCase = Callable[[Envelope[Any], UnitOfWork, Any], Awaitable[Any]]


def bound(deps: Any, use_case: UseCase) -> Handler:
    """A subscriber for one message type: the runtime hands it the parsed envelope and the unit
    of work; it calls the use case with the worker's dependencies (settings, clock)."""
    async def on_message(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await use_case(envelope, uow, deps)
    on_message.__name__ = f"on_{use_case.__name__}"
    return on_message


def periodic(job: Callable[[UnitOfWork], Awaitable[int]], every: float) -> Callable[[Context], Awaitable[None]]:
    """A background loop running ``job`` in its own transaction every ``every`` seconds; what it
    publishes leaves through the worker's outbox relay (durable schedules, never a sleeping handler)."""
    async def loop(ctx: Context) -> None:
        while True:
            try:
                async with ctx.uow() as uow:
                    done = await job(uow)
                    await uow.commit()
            except Exception as exc:  # the job re-reads durable state next tick: nothing is lost
                log.warning("periodic_job_failed", job=loop.__name__, error=type(exc).__name__)
                done = 0
            if done:
                ctx.relay.wake()
            await asyncio.sleep(every)
    loop.__name__ = getattr(job, "__name__", "periodic")
    return loop


class Unprocessable(InvalidMessage):
    """A handler found the message can never apply (e.g. names an unknown ticket): dead-letter it."""

    code = "UNPROCESSABLE"


@dataclass
class Subscription:
    topic: str
    handlers: dict[str, Handler]
    on_rejected: Rejector | None = None


@dataclass
class Context:
    """What a running worker shares with its handlers and background loops."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    name: str

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.name)


class Worker:
    """A consumer service: its subscriptions, background loops, and the shared delivery rules."""

    def __init__(self, name: str, settings: Settings, subscriptions: list[Subscription],
                 background: list[Callable[[Context], Awaitable[None]]] | None = None,
                 on_start: Callable[[Context], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.settings = settings
        self.group = settings.group(name)
        self.subscriptions = subscriptions
        self.background = background or []
        self.on_start = on_start
        self.ctx: Context | None = None
        self.offsets = OffsetCommitter(settings.commit_every_messages, settings.commit_every_seconds)
        self.processed = 0
        self.dead_lettered = 0

    # ------------------------------------------------------------------ lifecycle
    def build_app(self) -> FastStream:
        broker = KafkaBroker(self.settings.kafka_bootstrap_servers, client_id=self.name,
                             enable_idempotence=True, acks="all", log_level=logging.DEBUG,
                             logger=logging.getLogger("faststream.broker"))
        if self.subscriptions:
            self._subscribe(broker)
        app = FastStream(broker, logger=logging.getLogger("faststream.app"))
        stack = AsyncExitStack()
        tasks: list[asyncio.Task[None]] = []

        @app.on_startup
        async def start() -> None:
            await stack.__aenter__()
            self.ctx = await self._open(stack)
            tasks.append(asyncio.create_task(self._guard(self.ctx.relay.run(), "outbox relay")))
            tasks.append(asyncio.create_task(self._guard(self.offsets.run(), "offset committer")))
            for loop in self.background:
                tasks.append(asyncio.create_task(self._guard(loop(self.ctx), loop.__name__)))

        @app.on_shutdown
        async def flush_offsets() -> None:
            await self.offsets.flush()

        @app.after_shutdown
        async def stop() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.ctx is not None:
                await self.ctx.relay.relay_once()
            await stack.aclose()

        return app

    async def open(self, stack: AsyncExitStack) -> Context:
        """Opens the worker's resources without consuming (for tools and tests driving ``handle``)."""
        self.ctx = await self._open(stack)
        return self.ctx

    async def _open(self, stack: AsyncExitStack) -> Context:
        engine = make_engine(self.settings)
        stack.push_async_callback(engine.dispose)
        await require_current_schema(engine)
        sessions = make_session_factory(engine)
        producer = make_producer(self.settings, client_id=f"{self.name}-outbox")
        await producer.start()
        stack.push_async_callback(producer.stop)
        relay = OutboxRelay(self.name, sessions, producer, batch=self.settings.outbox_batch,
                            poll_seconds=self.settings.outbox_poll_seconds, consumer_group=self.group)
        ctx = Context(self.settings, engine, sessions, producer, relay, self.name)
        if self.on_start is not None:
            await self.on_start(ctx)
        log.info("worker_started", worker=self.name, group=self.group)
        return ctx

    async def _guard(self, coro: Awaitable[None], what: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background_loop_crashed", worker=self.name, loop=what)
            self._stop_process()

    def _subscribe(self, broker: KafkaBroker) -> None:
        """One consumer (one group member) per worker process, reading all of its topics."""
        by_topic = {sub.topic: sub for sub in self.subscriptions}

        @broker.subscriber(*by_topic, group_id=self.group, ack_policy=AckPolicy.MANUAL,
                           auto_offset_reset="earliest", max_poll_interval_ms=300_000,
                           batch=True, max_records=self.settings.batch_max_records, batch_timeout_ms=50,
                           title=self.name)
        async def on_messages(msg: KafkaMessage) -> None:
            records: tuple[ConsumerRecord, ...] = msg.raw_message  # type: ignore[assignment]
            async with self.offsets.handling(msg):
                await self.handle_batch(records, by_topic)

    # ------------------------------------------------------------------ delivery
    async def handle(self, record: ConsumerRecord, sub: Subscription) -> None:
        """Processes one record to a durable outcome; returns only when its offset may be committed."""
        assert self.ctx is not None
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(worker=self.name, topic=record.topic,
                                               partition=record.partition, offset=record.offset)
        try:
            envelope = decode(record.value)
        except InvalidMessage as exc:
            await self.dead_letter(record, exc, attempts=1)
            return
        structlog.contextvars.bind_contextvars(event_id=str(envelope.event_id), type=envelope.type,
                                               order_id=envelope.key)
        ticket_id = getattr(envelope.payload, "ticket_id", None)
        if ticket_id:
            structlog.contextvars.bind_contextvars(ticket_id=ticket_id)
        handler = sub.handlers.get(envelope.type)
        if handler is None:
            return  # a type on this topic that this worker has no business with
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._apply(envelope, handler)
                self.processed += 1
                return
            except DomainError as err:
                if sub.on_rejected is None:
                    await self.dead_letter(record, Unprocessable(f"{err.code}: {err.message}"), attempt)
                else:
                    await self._reject(envelope, err, sub.on_rejected)
                return
            except InvalidMessage as exc:
                await self.dead_letter(record, exc, attempts=attempt)
                return
            except Exception as exc:
                if attempt >= self.settings.max_attempts:
                    log.error("giving_up", attempts=attempt, error=type(exc).__name__)
                    await self.dead_letter(record, exc, attempts=attempt)
                    return
                log.warning("retrying", attempt=attempt, error=type(exc).__name__, detail=str(exc)[:200])
                await asyncio.sleep(self.settings.retry_backoff_seconds * 2 ** (attempt - 1))

    async def handle_batch(self, records: tuple[ConsumerRecord, ...], by_topic: dict[str, Subscription]) -> None:
        """Applies a fetched batch in one transaction: one inbox insert for all event ids, the
        handlers of the new ones, one fsync'd commit. If any message is refused, invalid or
        fails, the batch is rolled back and replayed one message at a time through ``handle``
        (per-message transactions, rejections, retries, DLQ), so the rare case stays exact."""
        assert self.ctx is not None
        work: list[tuple[Envelope[Any], Handler]] = []
        for record in records:
            try:
                envelope = decode(record.value)
            except InvalidMessage:
                return await self._one_by_one(records, by_topic)
            handler = by_topic[record.topic].handlers.get(envelope.type)
            if handler is not None:
                work.append((envelope, handler))
        if len(records) == 1:
            return await self._one_by_one(records, by_topic)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(worker=self.name, batch=len(records))
        applied = 0
        try:
            async with self.ctx.uow() as uow:
                fresh = await uow.first_time_many(self.group, [e.event_id for e, _ in work])
                for envelope, handler in work:
                    if envelope.event_id in fresh:
                        fresh.discard(envelope.event_id)  # a copy later in the same batch is skipped
                        await handler(envelope, uow)
                        applied += 1
                await uow.commit()
        except Exception as exc:
            log.info("batch_replayed_one_by_one", reason=type(exc).__name__, size=len(records))
            return await self._one_by_one(records, by_topic)
        self.processed += applied
        if uow.published:
            self.ctx.relay.wake()

    async def _one_by_one(self, records: tuple[ConsumerRecord, ...], by_topic: dict[str, Subscription]) -> None:
        for record in records:
            await self.handle(record, by_topic[record.topic])

    async def _apply(self, envelope: Envelope[Any], handler: Handler) -> None:
        assert self.ctx is not None
        async with self.ctx.uow() as uow:
            if not await uow.first_time(self.group, envelope.event_id):
                log.info("duplicate_ignored")
                return
            await handler(envelope, uow)
            await uow.commit()
        if uow.published:
            self.ctx.relay.wake()

    async def _reject(self, envelope: Envelope[Any], err: DomainError, rejector: Rejector) -> None:
        assert self.ctx is not None
        log.info("rejected", code=err.code)
        async with self.ctx.uow() as uow:
            if not await uow.first_time(self.group, envelope.event_id):
                return
            uow.publish(rejector(envelope, err), key=envelope.key, cause=envelope)
            await uow.commit()
        self.ctx.relay.wake()

    async def dead_letter(self, record: ConsumerRecord, exc: BaseException, attempts: int) -> None:
        assert self.ctx is not None
        reason = exc.reason if isinstance(exc, InvalidMessage) else f"{type(exc).__name__}: {exc}"
        value = record.value or b""
        try:
            original, encoding = value.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            original, encoding = base64.b64encode(value).decode(), "base64"
        key = record.key.decode("utf-8", "replace") if record.key else None
        letter = DeadLetter(
            source_topic=record.topic, partition=record.partition, offset=record.offset,
            consumer_group=self.group, error_class=type(exc).__name__, reason=reason[:2000],
            original_key=key, original_value=original, original_encoding=encoding,
            attempts=attempts, failed_at=datetime.now(UTC))
        envelope = new_envelope(letter, key=key or "unknown", producer=self.name)
        try:
            await self.ctx.producer.send_and_wait(DLQ.name, encode(envelope),
                                                  key=(key or "unknown").encode())
        except Exception:
            log.critical("dead_letter_failed_stopping")
            self._stop_process()
            await asyncio.Event().wait()  # never ack: the offset stays where it was
        self.dead_lettered += 1
        log.warning("dead_lettered", error=type(exc).__name__, reason=reason[:300])

    def _stop_process(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


class OffsetCommitter:
    """Commits the consumer's position after ``every`` handled messages or ``seconds``.

    aiokafka's position moves past a message as soon as it is fetched, so a commit must never
    run while a message is being handled: handling and flushing share one lock. A message whose
    handling raised is never followed by a commit (the worker stops instead).
    """

    def __init__(self, every: int, seconds: float) -> None:
        self.every = max(every, 1)
        self.seconds = seconds
        self._pending = 0
        self._last = 0.0
        self._message: KafkaMessage | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def handling(self, msg: KafkaMessage) -> AsyncIterator[None]:
        async with self._lock:
            yield  # an exception propagates: nothing is marked, nothing committed
            self._message = msg
            self._pending += 1
            if self._pending >= self.every or asyncio.get_running_loop().time() - self._last >= self.seconds:
                await self._commit()

    async def flush(self) -> None:
        async with self._lock:
            await self._commit()

    async def _commit(self) -> None:
        if not self._pending or self._message is None:
            return
        self._pending = 0
        self._last = asyncio.get_running_loop().time()
        await self._message.ack()  # commits the position: every message handled so far

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            await self.flush()


def run_worker(worker: Worker) -> None:
    configure_logging(worker.settings.log_level, worker.settings.log_json)
    asyncio.run(worker.build_app().run())
