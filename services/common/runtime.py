"""How every worker consumes: decode → check → inbox → handler → one DB commit → offset commit.

- Offsets are committed manually, only after the handler's transaction committed (or the
  message was dead-lettered or rejected): FastStream's default (ack first) would lose messages
  on failure. They are committed in small batches (every N messages or T seconds): a crash
  redelivers at most that many already-applied messages, which the inbox turns into no-ops.
- A fetched batch is applied in one transaction (one inbox insert for all ids, one fsync'd
  commit). If any message in it is refused, invalid or fails, the batch is rolled back and
  replayed one message at a time with the rules below, so the rare case stays exact.
- Failures are classified once (``failures.classify``):
  * caused by the message (undecodable, schema, a type the topic does not carry, a producer the
    catalogue does not name, an event id reused with other content, data the database refuses,
    a handler that trips over this input) → a dead letter at once, or the rejection event where
    the subscription has one (a domain rule refusing a request or command);
  * caused by infrastructure (PostgreSQL, Kafka or Redis unreachable, timeouts, deadlocks,
    serialization failures) → retried with capped backoff for as long as it lasts; the
    partition waits (the consumer fetches nothing more while a handler retries), an ops alert
    goes out after ``outage_alert_after_seconds``; never a dead letter, never a commit past it.
- A dead letter always fits: any key bytes are kept (base64 if need be), an oversize original is
  cut, with its size and SHA-256, and stays readable at its source offset.
- Nothing is committed after a message that did not reach an outcome: if the runtime itself
  breaks (a bug, not an outage), the offset committer is closed and the process exits non-zero at
  once; whoever takes over the partition gets the message again. Shutdown waits a bounded grace
  for a running handler, never for ever.
- Background loops (outbox relay, offset committer, periodic jobs) survive broker and database
  restarts: they log, back off and go on; a worker exits only when told to.
- Periodic jobs handle each due item in its own transaction; an item that fails for a reason of
  its own is quarantined with an alert and the others move on.

Why the delivery rules sit on FastStream's raw batch, not in a per-message subscriber with
middleware: FastStream runs the app, the broker connection and one batch subscriber per worker
(manual ack); dispatch is by typed routes. A per-message subscriber (FastStream's decode, DI and
an ack after each message) cannot apply a fetched batch in one transaction, nor replay a refused
batch in order one message at a time. Measured by ``bench/throughput.py 3000`` on this 2-core box
(2026-12-02), the same rules (``Worker.handle``) as the body of a per-message FastStream
subscriber ran 49 msg/s; this batch path ran 2,183 msg/s (44.7x), against a raw aiokafka relay
committing per message at 173 msg/s.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import heapq
import logging
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar, cast

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.middlewares import AckPolicy
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts import Envelope, InvalidMessage, decode, encode, new_envelope
from contracts.admin import ReplayDeadLetter
from contracts.ops import DeadLetter, OpsAlert, Severity
from contracts.topics import ADMIN_COMMANDS, BY_NAME, DLQ, OPS_ALERTS
from services.domain.errors import DomainError

from .db import make_engine, make_session_factory
from .failures import Failure, classify, content_hash, describe, safe_traceback
from .kafka import Producer, read_at, wait_for_kafka
from .logging import configure_logging, get_logger
from .metrics import EmbeddedServer, Readiness, WorkerMetrics, health_app, serve, stop_serving
from .migrations_check import require_schema
from .outbox import OutboxRelay, outbox_backlog
from .quarantine import Quarantine
from .routes import Clock, Deps, PeriodicJob, Route, Subscription, route
from .settings import Settings
from .tracing import Tracing, tracer_provider
from .uow import EventIdReused, UnitOfWork

log = get_logger("runtime")

T = TypeVar("T")
U = TypeVar("U", bound=UnitOfWork)

DEAD_LETTER_ORIGINAL_LIMIT = 64 * 1024  # bytes of the original kept inline; JSON-escaped it stays < 1 MB
INVALID_KEY = "invalid-key"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
EXIT_RUNTIME_BROKEN = 70  # EX_SOFTWARE

UnitOfWorkFactory = Callable[[async_sessionmaker[AsyncSession], str], U]


class Unprocessable(InvalidMessage):
    """A handler found the message can never apply (e.g. names an unknown ticket): dead-letter it.
    With ``alert``, ops also get an alert of that severity at once (a forged payment result is
    more than a count in the next dead-letter summary)."""

    def __init__(self, reason: str, code: str = "UNPROCESSABLE", alert: Severity | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.alert = alert


class Stopping(Exception):
    """The worker was told to stop while a message waited out an outage: leave it uncommitted."""


@dataclass
class Context(Generic[U]):
    """What a running worker shares with its handlers and background loops."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: Producer
    relay: OutboxRelay
    name: str
    unit_of_work: UnitOfWorkFactory[U]
    clock: Clock

    def uow(self) -> U:
        uow = self.unit_of_work(self.sessions, self.name)
        uow.clock = self.clock
        return uow


class Worker(Generic[U]):
    """A consumer service: its subscriptions, background loops, and the shared delivery rules.

    ``unit_of_work`` builds the worker's unit of work (with its repositories) on a session
    factory; ``deps`` is what every use case of the worker gets besides message and unit of work."""

    def __init__(self, name: str, settings: Settings, subscriptions: list[Subscription[U]], *,
                 unit_of_work: UnitOfWorkFactory[U], deps: Deps | None = None,
                 background: list[PeriodicJob[U]] | None = None,
                 on_start: Callable[[Context[U]], Awaitable[None]] | None = None,
                 needs_schema: str | None = None, replayable: bool | None = None,
                 traces: TracerProvider | None = None, prompt: bool = True) -> None:
        """``replayable``: whether the worker takes ReplayDeadLetter for its group; by default,
        when the topic catalogue names it a consumer of the admin topic (a tool's worker never).
        ``traces``: where spans go (by default an OTLP exporter when one is configured, else none).
        ``prompt``: someone waits on what the worker does next (a buyer on a refund, ops on a
        review). A worker that is not prompt (figures, buyer messages, statements) gathers each
        batch for up to ``gather_wait_ms``: it pays its fixed costs per fetch and transaction
        once for many events instead of waking with every one beside the prompt workers."""
        self.name = name
        self.needs_schema = needs_schema  # None: the head this code ships (simulators, tests)
        self.settings = settings
        self.unit_of_work = unit_of_work
        self.deps = deps or Deps(settings)
        self.group = settings.group(name)
        if replayable is None:
            replayable = name in ADMIN_COMMANDS.consumers
        self.subscriptions = self._with_replay(subscriptions) if replayable and subscriptions else subscriptions
        self.background = background or []
        self.on_start = on_start
        self.prompt = prompt
        self.ctx: Context[U] | None = None
        self.offsets = OffsetCommitter(settings.commit_every_messages, settings.commit_every_seconds,
                                       timeout=settings.commit_timeout_seconds)
        self.counts: Counter[str] = Counter()
        self.metrics = WorkerMetrics(name)
        self.tracing = Tracing(traces or tracer_provider(settings, name), name, self.group)
        self.readiness = Readiness(needs_assignment=bool(self.subscriptions))
        self._stopping = asyncio.Event()
        self._outage_since: float | None = None
        self._outage_alerted = False

    def _with_replay(self, subscriptions: list[Subscription[U]]) -> list[Subscription[U]]:
        """The worker also takes ReplayDeadLetter on the admin topic, next to its own routes there."""
        replay = route(ReplayDeadLetter, self._replay)
        admin = next((s for s in subscriptions if s.topic_name == ADMIN_COMMANDS.name), None)
        others = [s for s in subscriptions if s is not admin]
        routes = [*(admin.routes if admin else ()), replay]
        return [*others, Subscription(ADMIN_COMMANDS, routes, on_rejected=admin.on_rejected if admin else None)]

    async def _replay(self, envelope: Envelope[ReplayDeadLetter], uow: U, deps: Deps) -> None:
        """Reads the dead letter's original back from its source offset and handles it again, as
        if it had just arrived (in its own transaction, with every rule of ``handle``): applied,
        refused or dead-lettered once more. Only the group that gave up on it acts."""
        cmd = envelope.payload
        if cmd.consumer_group != self.group:
            return
        sub = next((s for s in self.subscriptions if s.topic_name == cmd.source_topic), None)
        if sub is None:
            raise Unprocessable(f"{self.group} does not consume {cmd.source_topic}", code="NOT_REPLAYABLE")
        record = await read_at(self.settings, cmd.source_topic, cmd.partition, cmd.offset)
        if record is None:
            raise Unprocessable("the source offset is no longer in the topic (retention passed)",
                                code="NOT_REPLAYABLE")
        if content_hash(record.value or b"").hex() != cmd.original_sha256:
            raise Unprocessable("the message at the source offset is not the dead letter's original",
                                code="NOT_REPLAYABLE")
        log.info("replaying", source_topic=cmd.source_topic, partition=cmd.partition, offset=cmd.offset)
        self._count("replayed")
        await self.handle(record, sub)

    def _count(self, outcome: str, n: int = 1) -> None:
        """What became of consumed messages: in memory (tests, the bench) and in /metrics."""
        if n:
            self.counts[outcome] += n
            self.metrics.outcomes.labels(outcome).inc(n)

    @property
    def processed(self) -> int:
        return self.counts["processed"]

    @property
    def dead_lettered(self) -> int:
        return self.counts["dead_lettered"]

    @property
    def context(self) -> Context[U]:
        if self.ctx is None:
            raise RuntimeError(f"worker {self.name} is not open")
        return self.ctx

    # ------------------------------------------------------------------ lifecycle
    def build_app(self) -> FastStream:
        broker = KafkaBroker(self.settings.kafka_bootstrap_servers, client_id=self.name,
                             security=self.settings.faststream_security(),
                             allow_auto_create_topics=False,  # `aftersales init` creates them; workers may not
                             enable_idempotence=True, acks="all", log_level=logging.DEBUG,
                             logger=logging.getLogger("faststream.broker"))
        if self.subscriptions:
            self._subscribe(broker)
        app = FastStream(broker, logger=logging.getLogger("faststream.app"))
        stack = AsyncExitStack()
        tasks: list[asyncio.Task[None]] = []
        serving: list[tuple[EmbeddedServer, asyncio.Task[None]]] = []  # metrics and health, while running

        @app.on_startup
        async def start() -> None:
            await stack.__aenter__()
            ctx = await self._open(stack)
            # FastStream connects its consumer right after this hook: let it find a serving broker
            await self._retrying("start: broker metadata", lambda: wait_for_kafka(self.settings, timeout=10))
            tasks.append(asyncio.create_task(self._keep_running(ctx.relay.run, "outbox relay")))
            tasks.append(asyncio.create_task(self._keep_running(self.offsets.run, "offset committer")))
            for job in self.background:
                tasks.append(asyncio.create_task(self._keep_running(partial(self._run_job, job), job.name)))
            if self.settings.metrics_port is not None:
                tasks.append(asyncio.create_task(self._keep_running(self._observe_outbox, "outbox figures")))
                serving.append(await serve(health_app(self.metrics, self._readiness(ctx)),
                                           self.settings.metrics_host, self.settings.metrics_port))
                log.info("metrics_serving", worker=self.name, port=self.settings.metrics_port)

        @app.on_shutdown
        async def flush_offsets() -> None:
            self._stopping.set()  # a handler waiting out an outage gives up its message, uncommitted
            await self.offsets.flush(timeout=self.settings.shutdown_grace_seconds)

        @app.after_shutdown
        async def stop() -> None:
            for server, task in serving:
                await stop_serving(server, task, grace=self.settings.shutdown_grace_seconds)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.ctx is not None:
                try:
                    await asyncio.wait_for(self.ctx.relay.relay_once(), self.settings.shutdown_grace_seconds)
                except Exception as exc:  # rows stay pending: the next process relays them
                    log.warning("final_relay_skipped", error=describe(exc))
            await stack.aclose()
            self.tracing.shutdown()

        return app

    def _readiness(self, ctx: Context[U]) -> Readiness:
        async def database() -> None:
            await require_schema(ctx.engine, self.needs_schema)  # answers, and with a schema this code accepts

        async def broker() -> None:
            await ctx.producer.ping()

        self.readiness.checks = {"database_and_schema": database, "broker": broker}
        return self.readiness

    async def _observe_outbox(self) -> None:
        """Every few seconds: how many of this worker's outbox rows wait, and since when."""
        while True:
            backlog, oldest = await outbox_backlog(self.context.sessions, self.name)
            self.metrics.outbox(backlog, (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0)
            await asyncio.sleep(self.settings.metrics_outbox_seconds)

    async def open(self, stack: AsyncExitStack, *, engine: AsyncEngine | None = None,
                   producer: Producer | None = None, start_hook: bool = True) -> Context[U]:
        """Opens the worker's resources without consuming (for tools and tests driving ``handle``).

        A rebuild passes its own ``engine`` (the database it fills, shared by all workers) and
        ``producer`` (one that keeps what is sent in the process, so nothing reaches a live topic),
        and skips the start hook (intake's would drop the live Redis cache)."""
        return await self._open(stack, engine=engine, producer=producer, start_hook=start_hook)

    async def _open(self, stack: AsyncExitStack, *, engine: AsyncEngine | None = None,
                    producer: Producer | None = None, start_hook: bool = True) -> Context[U]:
        if engine is None:
            engine = make_engine(self.settings)
            stack.push_async_callback(engine.dispose)
        # a worker (re)started during an outage waits for PostgreSQL and Kafka, like a handler would
        schema = await self._retrying("start: database", lambda: require_schema(engine, self.needs_schema))
        log.info("schema_accepted", worker=self.name, schema=schema, needs=self.needs_schema or "head")
        sessions = make_session_factory(engine)
        if producer is None:
            producer = await self._retrying("start: broker", lambda: self._started_producer())
            stack.push_async_callback(producer.stop)
        relay = OutboxRelay(self.name, sessions, producer, batch=self.settings.outbox_batch,
                            poll_seconds=self.settings.outbox_poll_seconds, consumer_group=self.group,
                            on_published=lambda topic, n: self.metrics.produced.labels(topic).inc(n))
        self.ctx = Context(self.settings, engine, sessions, producer, relay, self.name, self.unit_of_work,
                           self.deps.clock)
        if self.on_start is not None and start_hook:
            await self._retrying("start", lambda: self.on_start(self.context))  # type: ignore[misc]
        log.info("worker_started", worker=self.name, group=self.group)
        return self.ctx

    async def _started_producer(self) -> Producer:
        producer = Producer(self.settings, client_id=f"{self.name}-outbox")
        await producer.start()
        return producer

    async def _keep_running(self, loop: Callable[[], Awaitable[None]], what: str) -> None:
        """A background loop that fails is logged and restarted after a pause, never fatal."""
        pause = 0.5
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("background_loop_restarting", worker=self.name, loop=what, error=safe_traceback(exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.settings.retry_backoff_max_seconds)

    def _subscribe(self, broker: KafkaBroker) -> None:
        """One consumer (one group member) per worker process, reading all of its topics."""
        by_topic = {sub.topic_name: sub for sub in self.subscriptions}
        fetch_wait_ms, fetch_min_bytes = self._fetching()
        subscriber = broker.subscriber(
            *by_topic, group_id=self.group, ack_policy=AckPolicy.MANUAL, auto_offset_reset="earliest",
            max_poll_interval_ms=300_000, session_timeout_ms=self.settings.kafka_session_timeout_ms,
            batch=True, max_records=self.settings.batch_max_records, batch_timeout_ms=_POLL_MS,
            title=self.name, listener=_Assignment(self), decoder=_left_to_the_runtime,
            fetch_max_wait_ms=fetch_wait_ms, fetch_min_bytes=fetch_min_bytes)
        _without_idle_sleep(subscriber)

        @subscriber
        async def on_messages(msg: KafkaMessage) -> None:
            records: tuple[ConsumerRecord, ...] = msg.raw_message
            if self._stopping.is_set() or self.offsets.closed:
                raise Stopping("worker is stopping: batch left uncommitted")
            consumer = cast("AIOKafkaConsumer", msg.consumer)
            self.metrics.fetched(records, lambda where: consumer.highwater(TopicPartition(*where)))
            try:
                async with self.offsets.handling(msg):
                    with self.metrics.timing("batch"):
                        await self.handle_batch(records, by_topic)
            except (Stopping, asyncio.CancelledError):  # told to stop: leave the batch uncommitted
                self.offsets.close()
                raise
            except Exception as exc:  # the runtime itself broke: never commit past this batch
                self._die("delivery_broken", exc)
                raise

    def _fetching(self) -> tuple[int, int]:
        """How long the broker may hold a fetch, and for how many bytes. A prompt worker's fetch
        returns as soon as one record is there (aiokafka's defaults: 500 ms, 1 byte). Any other's
        is held until ``gather_wait_ms`` has passed or a batch's worth of bytes has come
        (``batch_max_records`` records of 10 kB, far more than they are)."""
        if self.prompt or not self.settings.gather_wait_ms:
            return 500, 1
        return self.settings.gather_wait_ms, self.settings.batch_max_records * 10_000

    # ------------------------------------------------------------------ delivery
    async def handle(self, record: ConsumerRecord, sub: Subscription[U]) -> None:
        """Processes one record to a durable outcome; returns only when its offset may be committed."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(worker=self.name, topic=record.topic,
                                               partition=record.partition, offset=record.offset)
        try:
            envelope = decode(record.value)
            self._check_boundary(record.topic, envelope)
        except InvalidMessage as exc:
            await self.dead_letter(record, exc.code, exc.reason)
            return
        structlog.contextvars.bind_contextvars(event_id=str(envelope.event_id), type=envelope.type,
                                               order_id=envelope.key)
        ticket_id = getattr(envelope.payload, "ticket_id", None)
        if ticket_id:
            structlog.contextvars.bind_contextvars(ticket_id=ticket_id)
        handler = sub.by_type.get(envelope.type)
        if handler is None or not handler.acts_on(envelope.payload):
            self._count("not_for_this_worker")  # the topic carries it; this worker has no part in it
            return
        with self.tracing.handling(envelope, record.topic, record.partition, record.offset):
            await self._handle_decoded(record, envelope, handler, sub)

    async def _handle_decoded(self, record: ConsumerRecord, envelope: Envelope[Any], handler: Route[Any, U],
                              sub: Subscription[U]) -> None:
        digest = content_hash(record.value)
        for attempt in range(1, self.settings.conflict_attempts + 1):
            try:
                await self._retrying("apply", lambda: self._apply(envelope, handler, digest))
                self._count("processed")
                return
            except DomainError as err:
                await self._refused(record, envelope, digest, err, sub)
                return
            except EventIdReused:
                await self.dead_letter(record, "EVENT_ID_REUSED",
                                       "event id already applied with different content", envelope=envelope)
                await self._alert("EVENT_ID_REUSED", Severity.CRITICAL, envelope.key,
                                  f"event {envelope.event_id} on {record.topic} reused with different content")
                return
            except InvalidMessage as exc:
                await self.dead_letter(record, exc.code, exc.reason, envelope=envelope)
                severity = getattr(exc, "alert", None)
                if severity is not None:
                    await self._alert(exc.code, severity, envelope.key, f"{exc.reason} ({record.topic})")
                return
            except Stopping:
                raise
            except Exception as exc:
                failure = classify(exc)
                if failure is Failure.CONFLICT and attempt < self.settings.conflict_attempts:
                    log.info("conflict_retry", attempt=attempt, error=describe(exc))
                    continue
                code = "DATA_ERROR" if isinstance(exc, DBAPIError) else "HANDLER_ERROR"
                log.error("message_failed", code=code, error=safe_traceback(exc))
                await self.dead_letter(record, code, describe(exc), envelope=envelope, attempts=attempt)
                return

    def _check_boundary(self, topic_name: str, envelope: Envelope[Any]) -> None:
        """Defence in depth: a catalogued topic carries only its own types, from its own producers."""
        topic = BY_NAME.get(topic_name)
        if topic is None:
            return  # not a catalogued topic (tools and tests use their own)
        if envelope.type not in {m.event_type for m in topic.messages}:
            raise Unprocessable(f"{envelope.type} is not carried by {topic_name}", code="FOREIGN_TYPE")
        if envelope.producer not in topic.producers:
            raise Unprocessable(f"producer {envelope.producer[:64]!r} may not write {topic_name}",
                                code="PRODUCER_NOT_ALLOWED")

    async def handle_batch(self, records: tuple[ConsumerRecord, ...], by_topic: dict[str, Subscription[U]]) -> None:
        """Applies a fetched batch in one transaction: one inbox insert for all event ids, the
        handlers of the new ones, one fsync'd commit. If any message is refused, invalid or
        fails, the batch is rolled back and replayed one message at a time through ``handle``
        (per-message transactions, rejections, retries, DLQ), so the rare case stays exact."""
        ctx = self.context
        if len(records) == 1:
            return await self._one_by_one(records, by_topic)
        work: list[tuple[Envelope[Any], Route[Any, U], bytes, ConsumerRecord]] = []
        for record in records:
            try:
                envelope = decode(record.value)
                self._check_boundary(record.topic, envelope)
            except InvalidMessage:
                return await self._one_by_one(records, by_topic)
            if envelope.type == ReplayDeadLetter.event_type:  # handles another message inside: alone
                return await self._one_by_one(records, by_topic)
            handler = by_topic[record.topic].by_type.get(envelope.type)
            if handler is not None and handler.acts_on(envelope.payload):
                work.append((envelope, handler, content_hash(record.value), record))
        if not work:  # nothing in the batch for this worker: no transaction at all
            self._count("not_for_this_worker", len(records))
            return
        digests: dict[Any, set[bytes]] = {}
        for envelope, _, digest, _ in work:
            digests.setdefault(envelope.event_id, set()).add(digest)
        if any(len(d) > 1 for d in digests.values()):  # one id, two contents: let the inbox judge each
            return await self._one_by_one(records, by_topic)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(worker=self.name, batch=len(records))
        applied = 0
        try:
            async with ctx.uow() as uow:
                fresh = await uow.first_time_many(self.group, {e.event_id: h for e, _, h, _ in work})
                duplicates = len(work) - len(fresh)
                await uow.prepare({e.key for e, _, _, _ in work if e.event_id in fresh})
                for envelope, handler, _, record in work:
                    if envelope.event_id in fresh:
                        fresh.discard(envelope.event_id)  # a copy later in the same batch is skipped
                        staged = len(uow.published)
                        with self.tracing.handling(envelope, record.topic, record.partition, record.offset):
                            await handler.use_case(envelope, uow, self.deps)
                            self.tracing.published(uow.published[staged:])
                        applied += 1
                await uow.commit()
        except Exception as exc:
            log.info("batch_replayed_one_by_one", reason=describe(exc), size=len(records))
            return await self._one_by_one(records, by_topic)
        self._count("processed", applied)
        self._count("duplicates", duplicates)
        self._count("not_for_this_worker", len(records) - len(work))
        ctx.relay.hand_over(uow.outgoing)

    async def _one_by_one(self, records: tuple[ConsumerRecord, ...], by_topic: dict[str, Subscription[U]]) -> None:
        for record in records:
            await self.handle(record, by_topic[record.topic])

    async def _apply(self, envelope: Envelope[Any], handler: Route[Any, U], digest: bytes) -> None:
        ctx = self.context
        async with ctx.uow() as uow:
            if not await uow.first_time(self.group, envelope.event_id, digest):
                self._count("duplicates")
                log.info("duplicate_ignored")
                return
            await handler.use_case(envelope, uow, self.deps)
            await uow.commit()
        self.tracing.published(uow.published)
        self._outage_over()
        ctx.relay.hand_over(uow.outgoing)

    async def _refused(self, record: ConsumerRecord, envelope: Envelope[Any], digest: bytes,
                       err: DomainError, sub: Subscription[U]) -> None:
        """A domain rule refused the message: the rejection event where the contract has one."""
        if sub.on_rejected is None:
            await self.dead_letter(record, err.code, f"{err.code}: {err.message}"[:2000], envelope=envelope)
            return
        rejector = sub.on_rejected
        ctx = self.context

        async def write_rejection() -> None:
            log.info("rejected", code=err.code)
            async with ctx.uow() as uow:
                if not await uow.first_time(self.group, envelope.event_id, digest):
                    return
                uow.publish(rejector(envelope, err), key=envelope.key, cause=envelope)
                await uow.commit()
            ctx.relay.hand_over(uow.outgoing)

        try:
            await self._retrying("reject", write_rejection)
            self._count("rejected")
        except Stopping:
            raise
        except Exception as exc:  # the rejection itself cannot be built or stored: the message is the cause
            await self.dead_letter(record, err.code, f"{err.code}; rejection not writable: {describe(exc)}",
                                   envelope=envelope)

    # ------------------------------------------------------------------ outages
    async def _retrying(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Runs ``action`` until it succeeds or fails for a reason that is not infrastructure
        (re-raised). While infrastructure fails, this message waits: capped backoff, an ops alert
        once the outage passes the threshold, and a prompt exit path when the worker stops."""
        attempt = 0
        while True:
            try:
                return await action()
            except Exception as exc:
                if classify(exc) is not Failure.INFRASTRUCTURE:
                    raise
                attempt += 1
                self.counts["infrastructure_retries"] += 1
                self.metrics.retries.labels(what).inc()
                loop = asyncio.get_running_loop()
                self._outage_since = self._outage_since or loop.time()
                log.warning("infrastructure_retry", what=what, attempt=attempt, error=describe(exc))
                if (not self._outage_alerted
                        and loop.time() - self._outage_since >= self.settings.outage_alert_after_seconds):
                    self._outage_alerted = await self._alert_directly(
                        "INFRASTRUCTURE_OUTAGE", f"{self.name} has been waiting out {describe(exc)} for "
                        f"{loop.time() - self._outage_since:.0f} s ({what})")
                delay = min(self.settings.retry_backoff_seconds * 2 ** min(attempt - 1, 16),
                            self.settings.retry_backoff_max_seconds)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except TimeoutError:
                    continue
                raise Stopping(what) from exc

    def _outage_over(self) -> None:
        if self._outage_since is not None:
            log.info("infrastructure_recovered", worker=self.name)
        self._outage_since, self._outage_alerted = None, False

    async def _alert_directly(self, kind: str, message: str) -> bool:
        """An alert that must not wait for PostgreSQL (the outbox may be what is down)."""
        alert = OpsAlert(kind=kind, severity=Severity.CRITICAL, message=message[:500], order_id=self.name)
        try:
            await asyncio.wait_for(self.context.producer.send_and_wait(
                OPS_ALERTS.name, encode(new_envelope(alert, key=self.name, producer=self.name)),
                key=self.name.encode()), 10)
            return True
        except Exception as exc:
            log.warning("alert_not_sent", kind=kind, error=describe(exc))
            return False

    async def _alert(self, kind: str, severity: Severity, order_id: str, message: str) -> None:
        key = order_id if _ID_PATTERN.match(order_id) else INVALID_KEY
        alert = OpsAlert(kind=kind, severity=severity, message=message[:500], order_id=key)
        await self._retrying("alert", lambda: self.context.producer.send_and_wait(
            OPS_ALERTS.name, encode(new_envelope(alert, key=key, producer=self.name)), key=key.encode()))
        self.metrics.produced.labels(OPS_ALERTS.name).inc()

    # ------------------------------------------------------------------ dead letters
    def build_dead_letter(self, record: ConsumerRecord, code: str, reason: str,
                          envelope: Envelope[Any] | None = None, attempts: int = 1) -> Envelope[Any]:
        """A dead letter that fits whatever the original was: any key, any size."""
        value = record.value or b""
        kept = value[:DEAD_LETTER_ORIGINAL_LIMIT]
        try:
            original, encoding = kept.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            original, encoding = base64.b64encode(kept).decode(), "base64"
        raw_key = record.key
        key_text: str | None = None
        key_encoding = "utf-8"
        if raw_key is not None:
            try:
                key_text = raw_key.decode("utf-8")
            except UnicodeDecodeError:
                key_text, key_encoding = base64.b64encode(raw_key).decode(), "base64"
            if len(key_text) > 1024:
                key_text = key_text[:1024]
        letter_key = key_text if key_text and key_encoding == "utf-8" and _ID_PATTERN.match(key_text) else INVALID_KEY
        letter = DeadLetter(
            source_topic=record.topic, partition=record.partition, offset=record.offset,
            consumer_group=self.group, error_class=code, reason_code=code[:64], reason=reason[:2000],
            original_key=key_text, original_key_encoding=key_encoding, original_value=original,
            original_encoding=encoding, original_size=len(value), original_sha256=content_hash(value).hex(),
            original_truncated=len(kept) < len(value),
            original_event_id=envelope.event_id if envelope else None,
            original_type=envelope.type[:64] if envelope else None,
            attempts=attempts, failed_at=datetime.now(UTC))
        return new_envelope(letter, key=letter_key, producer=self.name, cause=envelope)

    async def dead_letter(self, record: ConsumerRecord, code: str, reason: str, *,
                          envelope: Envelope[Any] | None = None, attempts: int = 1) -> None:
        if record.topic == DLQ.name:  # a dead letter of a dead letter would circle for ever
            self._count("dead_letter_unrecordable")
            log.critical("dead_letter_not_recordable", code=code, reason=reason[:300])
            return
        try:
            letter = self.build_dead_letter(record, code, reason, envelope, attempts)
        except Exception as exc:
            self._die("dead_letter_unbuildable", exc)
            raise
        producer = self.context.producer

        async def send() -> None:
            await producer.send_and_wait(DLQ.name, encode(letter), key=letter.key.encode())

        try:
            await self._retrying("dead letter", send)
        except Stopping:
            raise
        except Exception as exc:
            self._die("dead_letter_unsendable", exc)
            raise
        self._count("dead_lettered")
        self.counts[f"dead_lettered:{code}"] += 1
        self.metrics.dead_letters.labels(code).inc()
        self.metrics.produced.labels(DLQ.name).inc()
        log.warning("dead_lettered", code=code, reason=reason[:300])

    def _die(self, what: str, exc: BaseException) -> None:
        """The runtime cannot bring this message to an outcome: nothing more is committed and the
        process exits now, non-zero; the partition's next owner gets the message again."""
        self.offsets.close()
        log.critical(what, worker=self.name, error=safe_traceback(exc))
        sys.stderr.flush()
        os._exit(EXIT_RUNTIME_BROKEN)

    # ------------------------------------------------------------------ periodic jobs
    async def _run_job(self, job: PeriodicJob[U]) -> None:
        """Runs ``job`` every ``job.every`` seconds until cancelled; an outage pauses it (logged),
        an item failing for its own reason is quarantined and the others go on."""
        ctx = self.context
        pause = job.every
        while True:
            try:
                done = await run_due(ctx.uow, job, on_quarantined=lambda: self.metrics.job_failures.labels(
                    job.name, "quarantined").inc())
                pause = job.every
            except Exception as exc:
                log.warning("periodic_job_paused", job=job.name, error=describe(exc))
                self.metrics.job_failures.labels(job.name, "paused").inc()
                done = 0
                pause = min(max(pause * 2, job.every), self.settings.retry_backoff_max_seconds)
            if done:
                ctx.relay.wake()
            await asyncio.sleep(pause)


async def run_due(units: Callable[[], U], job: PeriodicJob[U],
                  on_quarantined: Callable[[], None] = lambda: None) -> int:
    """One tick of a periodic job: each due item in its own transaction (``units`` opens one).
    An item that fails for a reason of its own is quarantined (with an alert); an outage stops
    the tick (raised), leaving the items not yet done for the next one. Returns how many moved."""
    async with units() as uow:
        quarantine = Quarantine(uow.producer, job.name)
        items = await job.due(uow, quarantine)
    done = 0
    for item in items:
        try:
            async with units() as uow:
                if await job.run(uow, item):
                    done += 1
                await uow.commit()
        except Exception as exc:
            if classify(exc) is not Failure.MESSAGE:
                raise
            log.error("periodic_item_quarantined", job=job.name, item=item.id, error=safe_traceback(exc))
            async with units() as uow:
                await quarantine.park(uow, item, describe(exc))
                await uow.commit()
            on_quarantined()
            done += 1
    return done


_POLL_MS = 100  # how long one poll waits for records; it returns as soon as any arrive


class _PromptBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber without its sleep after an empty poll.

    FastStream 0.7 sleeps ``batch_timeout_ms`` again whenever ``getmany`` came back empty, so a
    record that arrives during that sleep waits for it: up to 50 ms per hop for an idle worker,
    on a refund-only ticket's 7 hops. Measured one ticket at a time (2026-12-05): request ->
    refunded p50 333 ms with the sleep, 186 ms without it; idle CPU unchanged (``getmany``
    itself waits for data, so no loop spins)."""

    __slots__ = ()

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord, ...]:
        batches = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
        return in_log_order(batches.values())


def in_log_order(partitions: Iterable[list[ConsumerRecord]]) -> tuple[ConsumerRecord, ...]:
    """A fetched batch in the order it was written: each partition's records in offset order,
    merged by record time (records of one millisecond in the order of the fetch). aiokafka hands
    a fetch over partition by partition, so a gathered batch applied a ticket event before the
    order fact written well before it on another topic: monitoring took the line's quantity from
    the ticket, settlement entered an order on another event, and the live state parted from the
    replay's, which merges the log by time too (``services.replay.log.merged``)."""
    fetched = [records for records in partitions if records]
    if len(fetched) == 1:
        return tuple(fetched[0])
    return tuple(heapq.merge(*fetched, key=lambda record: record.timestamp))


def _without_idle_sleep(subscriber: Any) -> None:
    if type(subscriber) is not BatchSubscriber:  # a FastStream upgrade changed the class: look again
        raise TypeError(f"expected FastStream's BatchSubscriber, got {type(subscriber).__name__}")
    subscriber.__class__ = _PromptBatchSubscriber


async def _left_to_the_runtime(message: Any) -> None:
    """FastStream's decoder for the batch: nothing. The runtime decodes each record itself
    (``contracts.decode``, with the topic's checks); FastStream's own JSON parsing of every record
    of a batch, whose result nothing read, was a tenth of a relaying worker's time."""
    return None


class _Assignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps the order per key when partitions move, and tells readiness and /metrics which
    partitions this process holds in its group.

    aiokafka runs every member's ``on_partitions_revoked`` before any member's
    ``on_partitions_assigned``. The old owner waits there for its running batch, commits its
    position and sends the rows it committed; the new owner's relay reads the table before it
    sends anything it hands over. So for any key, what the old owner committed leaves first."""

    def __init__(self, worker: Worker[Any]) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked and self.worker.ctx is not None:
            grace = self.worker.settings.shutdown_grace_seconds
            await self.worker.offsets.flush(timeout=grace)  # waits for the running batch, commits after it
            await self.worker.ctx.relay.flush(timeout=grace)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.worker.ctx is not None:
            self.worker.ctx.relay.read_table_first()
        self.worker.readiness.assignment_received = True
        self.worker.metrics.assigned.set(len(assigned))
        log.info("partitions_assigned", worker=self.worker.name, partitions=len(assigned))


class OffsetCommitter:
    """Commits the consumer's position after ``every`` handled messages or ``seconds``.

    aiokafka's position moves past a message as soon as it is fetched, so a commit must never
    run while a message is being handled: handling and flushing share one lock. Once a message
    failed to reach an outcome the committer is closed for good: nothing after it is committed.
    A commit the broker refuses (a rebalance, a restart) is retried at the next chance; the
    messages it covered are applied already, and the inbox makes their redelivery harmless.
    """

    def __init__(self, every: int, seconds: float, timeout: float = 10.0) -> None:
        self.every = max(every, 1)
        self.seconds = seconds
        self.timeout = timeout
        self.closed = False
        self._pending = 0
        self._last = 0.0
        self._message: KafkaMessage | None = None
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self.closed = True

    @asynccontextmanager
    async def handling(self, msg: KafkaMessage) -> AsyncIterator[None]:
        async with self._lock:
            yield  # an exception propagates: nothing is marked, nothing committed
            self._message = msg
            self._pending += 1
            if self._pending >= self.every or asyncio.get_running_loop().time() - self._last >= self.seconds:
                await self._commit()

    async def flush(self, timeout: float | None = None) -> None:
        """Commits what is handled; with ``timeout``, gives up (uncommitted) if a handler holds on."""
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)
        except TimeoutError:
            log.warning("flush_without_final_commit", reason="a handler is still running")
            return
        try:
            await self._commit()
        finally:
            self._lock.release()

    async def _commit(self) -> None:
        if self.closed or not self._pending or self._message is None:
            return
        self._last = asyncio.get_running_loop().time()
        try:  # commits the position: every message handled so far
            await asyncio.wait_for(self._message.ack(), self.timeout)
        except (KafkaError, TimeoutError) as exc:  # a commit waiting on a lost coordinator must not hold us
            log.warning("offset_commit_failed", error=describe(exc))
            return  # still pending: the next commit covers these messages too
        self._pending = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            await self.flush()


def dump_tasks() -> None:
    """SIGUSR1: where every coroutine of this worker is waiting (files, lines, functions only)."""
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=12)
        where = " <- ".join(f"{f.f_code.co_name}@{f.f_code.co_filename.rsplit('/', 1)[-1]}:{f.f_lineno}"
                            for f in reversed(frames))
        log.warning("task_dump", task=task.get_name(), where=where)


def run_worker(worker: Worker[Any], app: FastStream | None = None) -> None:
    """Runs the worker's app (or ``app``, built from it with hooks of the caller's) until a signal."""
    configure_logging(worker.settings.log_level, worker.settings.log_json)
    app = app or worker.build_app()

    async def main() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
        await app.run()

    with contextlib.suppress(KeyboardInterrupt):  # an interactive stop
        asyncio.run(main())

