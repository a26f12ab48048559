"""The replay engine: the workers' own runtime and use cases, fed recorded inputs in this process.

Each replayed worker is built as in production (``build_worker``), with its inbox, unit of work,
rejections, dead letters and periodic jobs, but opened on the replay's database and with a
producer that keeps what it is given (``KeptProducer``): nothing reaches Kafka. After each input
the engine drains the outbox, handing every staged message to the workers that subscribe to its
topic, until nothing is left. The periodic jobs run on the log's clock: those that act on a
deadline (deadlines, resends, reminders, escalations) at the moment each item fell due, so one that
passed between two inputs fires before the later one, as it did live; those that sweep up what
changed (figures, dead-letter summaries) once per their period of log time.

The people and systems outside the workers are not replayed: their recorded answers are inputs.
The simulators' own state is not rebuilt. An admin's replay of a dead letter is replayed when its
original is an input; otherwise (the workers' own topics are made again) it is counted and left out.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from aiokafka.structs import ConsumerRecord, RecordMetadata
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.admin import ReplayDeadLetter
from services.common.db import make_session_factory
from services.common.kafka import Producer
from services.common.procs import MODULES, PRINCIPAL, WORKERS
from services.common.quarantine import Quarantine
from services.common.routes import Deps, PeriodicJob, Subscription
from services.common.runtime import Worker, run_due
from services.common.settings import Settings
from services.common.tables import OutboxRow
from services.intake.reasons import seed_default_reasons

from .log import Recorded

# every worker whose state is rebuilt (the simulators stand for systems outside: not replayed)
REPLAYED = {PRINCIPAL.get(name, name): MODULES[name] for name in (*WORKERS, "backoffice")}
NOT_REPLAYED = "a dead letter's replay whose original is not among the inputs replayed"
DRAIN_BATCH = 500
# periodic jobs that sweep up what changed rather than act on a deadline: they run at their period
SWEEPS = {"dead_letter_summary", "daily_figures"}
TIMER_PRECISION_SECONDS = 0.05
MAX_TIMER_FIRINGS = 100_000  # between two inputs; more means a job whose item stays due after it ran


class LogClock:
    """The replay's time: each input's recorded time (never moving backwards)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, to: datetime) -> None:
        self.now = max(self.now, to)


class KeptProducer(Producer):
    """What the workers send straight to Kafka (dead letters, alerts), kept in this process for the
    engine to hand on: a replay publishes nothing."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, client_id="replay")
        self.kept: list[tuple[str, bytes, bytes]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None,
                            headers: list[tuple[str, bytes]] | None = None) -> RecordMetadata:
        self.kept.append((topic, key or b"", value))
        return cast("RecordMetadata", None)  # nobody reads the metadata of a dead letter or an alert

    async def send_batch(self, messages: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]]) -> None:
        self.kept.extend((topic, key or b"", value) for topic, value, key, _ in messages)

    def take(self) -> list[tuple[str, bytes, bytes]]:
        kept, self.kept = self.kept, []
        return kept


@dataclass
class Tally:
    """What the replay did, for its report."""

    inputs: int = 0
    internal: int = 0
    left_out: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # processed, rejected, dead_lettered, …


class Replay:
    """The replayed workers on one database, with the log's clock."""

    def __init__(self, settings: Settings, start: datetime) -> None:
        self.settings = settings
        self.clock = LogClock(start)
        self.deps = Deps(settings, self.clock)
        self.producer = KeptProducer(settings)
        self.workers: list[Worker[Any]] = [
            importlib.import_module(module).build_worker(settings, self.deps) for module in REPLAYED.values()]
        self.subscribers: dict[str, list[tuple[Worker[Any], Subscription[Any]]]] = {}
        for worker in self.workers:
            for sub in worker.subscriptions:
                self.subscribers.setdefault(sub.topic_name, []).append((worker, sub))
        jobs = [(worker, job) for worker in self.workers for job in worker.background]
        self.timers = [(worker, job) for worker, job in jobs if job.name not in SWEEPS]
        self.sweeps = [(worker, job) for worker, job in jobs if job.name in SWEEPS]
        self.last_tick: dict[str, datetime] = {}
        self.offsets: Counter[str] = Counter()
        self.tally = Tally()

    async def open(self, stack: AsyncExitStack, engine: AsyncEngine) -> None:
        for worker in self.workers:
            await worker.open(stack, engine=engine, producer=self.producer, start_hook=False)
        self.sessions = make_session_factory(engine)
        await seed_default_reasons(self.sessions)  # what intake does when it starts, without the cache

    async def feed(self, inputs: list[Recorded], progress: Callable[[int], None] = lambda n: None) -> None:
        at_offset = {(r.topic, r.partition, r.offset): r for r in inputs}
        for n, record in enumerate(inputs, start=1):
            await self._timers_until(record.at)
            self.clock.advance(record.at)
            await self._sweep()
            self.tally.inputs += 1
            if record.type == ReplayDeadLetter.event_type:
                await self._replay_dead_letter(record, at_offset)
            else:
                await self._deliver(record.topic, record.key.encode(), record.value,
                                    partition=record.partition, offset=record.offset)
            await self._drain()
            progress(n)

    async def _replay_dead_letter(self, record: Recorded, inputs: dict[tuple[str, int, int], Recorded]) -> None:
        """An admin replayed a dead letter: its original (an input read with the rest) goes again to
        the one group that gave up on it, as the live worker read it back from its offset. An
        original on a topic the workers write has no recorded copy here (the replay made its own):
        counted, left out."""
        try:
            command = ReplayDeadLetter.model_validate(json.loads(record.value)["payload"])
        except (ValueError, KeyError, TypeError):
            command = None
        original = None if command is None else inputs.get((command.source_topic, command.partition, command.offset))
        if command is None or original is None:
            self.tally.left_out[NOT_REPLAYED] += 1
            return
        for worker, sub in self.subscribers.get(original.topic, []):
            if worker.group == command.consumer_group:
                await self._deliver(original.topic, original.key.encode(), original.value,
                                    partition=original.partition, offset=original.offset, only=(worker, sub))

    async def finish(self, at: datetime) -> None:
        """Moves the clock to ``at`` (when the log was read), every deadline due by then firing on
        its way, and sweeps once more."""
        await self._timers_until(at)
        self.clock.advance(at)
        await self._sweep(force=True)
        for worker in self.workers:
            self.tally.outcomes.update(worker.counts)

    async def _timers_until(self, until: datetime) -> None:
        """Fires each deadline-like job at the moment its next item fell due, in time order, until
        ``until``: live, the job ticked every second or so, so a deadline that passed before an
        input was recorded had fired before it, and a resend that needed three ticks had three.
        The moment is found by halving the gap (the items' due times are not part of the jobs'
        interface; being due only grows with time), one query per job when nothing is due."""
        stuck: set[str] = set()  # due, yet its run moved nothing: not asked again before this input
        for _ in range(MAX_TIMER_FIRINGS):
            earliest: tuple[datetime, Worker[Any], PeriodicJob[Any]] | None = None
            for worker, job in self.timers:
                if f"{worker.name}/{job.name}" in stuck:
                    continue
                bound = until if earliest is None else earliest[0]
                if not await self._due_at(worker, job, bound):
                    continue
                low, high = self.clock.now, bound
                while (high - low).total_seconds() > TIMER_PRECISION_SECONDS:
                    middle = low + (high - low) / 2
                    low, high = (low, middle) if await self._due_at(worker, job, middle) else (middle, high)
                earliest = (high, worker, job)
            if earliest is None:
                return
            at, worker, job = earliest
            self.clock.advance(at)
            if not await run_due(worker.context.uow, job):
                stuck.add(f"{worker.name}/{job.name}")  # an item its run declines: the others go on
                continue
            await self._drain()
        raise RuntimeError(f"periodic jobs fired {MAX_TIMER_FIRINGS} times before {until}: a job that never settles")

    async def _due_at(self, worker: Worker[Any], job: PeriodicJob[Any], at: datetime) -> bool:
        """Whether the job has an item due at ``at`` (the clock set there for the question only)."""
        now, self.clock.now = self.clock.now, at
        try:
            async with worker.context.uow() as uow:
                return bool(await job.due(uow, Quarantine(uow.producer, job.name)))
        finally:
            self.clock.now = now

    async def _sweep(self, force: bool = False) -> int:
        """The jobs that sweep up what changed (figures, dead-letter summaries), at their period."""
        moved = 0
        for worker, job in self.sweeps:
            name = f"{worker.name}/{job.name}"
            last = self.last_tick.get(name)
            if not force and last is not None and (self.clock.now - last).total_seconds() < job.every:
                continue
            self.last_tick[name] = self.clock.now
            done = await run_due(worker.context.uow, job)
            if done:
                moved += done
                await self._drain()
        return moved

    async def _drain(self) -> None:
        """Hands every staged message on until none is left (in the order they were staged)."""
        while True:
            async with self.sessions() as session, session.begin():
                rows = (await session.execute(
                    select(OutboxRow.id, OutboxRow.topic, OutboxRow.key, OutboxRow.value)
                    .where(OutboxRow.published_at.is_(None)).order_by(OutboxRow.id).limit(DRAIN_BATCH))).all()
                if rows:
                    await session.execute(update(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows]))
                                          .values(published_at=self.clock.now))
            kept = self.producer.take()
            if not rows and not kept:
                return
            for row in rows:
                await self._deliver(row.topic, row.key.encode(), row.value)
            for topic, key, value in kept:
                await self._deliver(topic, key, value)
            self.tally.internal += len(rows) + len(kept)

    async def _deliver(self, topic: str, key: bytes, value: bytes, *, partition: int = 0,
                       offset: int | None = None,
                       only: tuple[Worker[Any], Subscription[Any]] | None = None) -> None:
        if offset is None:
            offset = self.offsets[topic]
            self.offsets[topic] += 1
        record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
            topic, partition, offset, int(self.clock.now.astimezone(UTC).timestamp() * 1000), 0, key, value,
            None, len(key), len(value), [])
        for worker, sub in [only] if only else self.subscribers.get(topic, []):
            await worker.handle(record, sub)
