"""Unit of work: one transaction holding state changes, outgoing messages (outbox) and the
processed-event ids (inbox). Either all of it commits or none of it does.

It also hands out the worker's repositories, set when it opens (cosmicpython's shape): a use
case reaches its data only through ``uow.tickets``, ``uow.refunds``, … So the same use case
runs against PostgreSQL (``SqlUnitOfWork`` and the worker's SQL repositories) in the
integration tests and in production, and against in-memory fakes in the use-case unit tests.
Each worker declares its own unit of work (which repositories it has) next to its repository.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy import Executable, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Contract, Envelope, encode, new_envelope, topic_of
from services.domain import ids

from .outbox import OutboxMessage
from .tables import InboxRow, OutboxRow, QuarantinedItem

# One statement for any number of events: executed with a list of rows, SQLAlchemy sends them as
# one multi-row INSERT whose SQL is compiled once, instead of building (and caching) a new
# statement, with a bound value for every field, for each batch size.
_RECORD_IN_INBOX = (insert(InboxRow.__table__).on_conflict_do_nothing()  # type: ignore[arg-type]
                    .returning(InboxRow.__table__.c.event_id))
# A transaction's outgoing messages, written together at commit (rows in the order they were
# published: the relay sends them in id order); building an ORM object for each cost a quarter
# of a relaying worker's time.
_STAGE_IN_OUTBOX = insert(OutboxRow.__table__)  # type: ignore[arg-type]

Stage = Callable[[Executable, dict[str, Any]], None]
"""Keeps a row back for a statement built once, to be executed with every row kept back for it
when the transaction writes (``SqlUnitOfWork.stage``)."""


def _system_clock() -> datetime:
    return datetime.now(UTC)


class EventIdReused(Exception):
    """An event id already applied arrived with different content: not a redelivery."""

    def __init__(self, event_ids: list[uuid.UUID]) -> None:
        super().__init__(f"{len(event_ids)} event id(s) reused with different content")
        self.event_ids = event_ids


class BatchRows(Protocol):
    """A repository that reads the rows of a fetched batch's orders at once (``prepare``), keeps
    them current through its saves, and may keep writes back until the commit."""

    async def read_batch(self, order_ids: Collection[str]) -> None:
        """Reads, and locks where its use cases lock, these orders' rows: a statement per table."""

    async def write(self) -> None:
        """Writes what it kept back: before the commit and before a savepoint."""

    def forget(self) -> None:
        """A savepoint rolled back: drops what it kept (the rows stay locked; they are read again)."""


class UnitOfWork(ABC):
    """What every use case and the runtime may do with a transaction, whatever stores it."""

    def __init__(self, producer: str) -> None:
        self.producer = producer
        self.published: list[Envelope[Any]] = []
        self.outgoing: list[OutboxMessage] = []  # their outbox rows: handed to the relay after the commit
        self.committed = False
        self.clock: Callable[[], datetime] = _system_clock  # the worker's (a rebuild's is the log's)
        self._caused: Counter[uuid.UUID] = Counter()

    async def __aenter__(self) -> Self:
        await self._begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if not self.committed:
            await self._rollback()
        await self._close()

    def publish(self, payload: Contract, *, key: str, cause: Envelope[Any] | None = None,
                topic: str | None = None) -> Envelope[Any]:
        """Adds a message to the outbox; it leaves for Kafka only if this transaction commits.

        A message caused by another gets an event id derived from its cause (the n-th message this
        producer sends for it): handling the same input again, in a rebuild from the log, sends the
        same ids, so everything keyed on them (notifications, work items, shipments) matches."""
        event_id = None
        if cause is not None:
            event_id = ids.caused_by(cause.event_id, f"{self.producer}/{self._caused[cause.event_id]}")
            self._caused[cause.event_id] += 1
        envelope = new_envelope(payload, key=key, producer=self.producer, cause=cause, event_id=event_id,
                                occurred_at=self.clock())
        row = {"producer": self.producer, "topic": topic or topic_of(type(payload)).name, "key": envelope.key,
               "event_id": envelope.event_id, "type": envelope.type, "value": encode(envelope)}
        self._stage(envelope, row)
        self.published.append(envelope)
        self.outgoing.append(row)
        return envelope

    def _unpublish_from(self, index: int) -> None:
        """A savepoint rolled back: what it published is gone, and so are the ids it used."""
        for undone in self.published[index:]:
            if undone.causation_id is not None:
                self._caused[undone.causation_id] -= 1
        del self.published[index:]
        del self.outgoing[index:]

    async def first_time(self, consumer: str, event_id: uuid.UUID, digest: bytes | None = None) -> bool:
        """Records the event as processed by ``consumer``; False if it already was (a redelivery).

        With the content's ``digest``, the same id with other content raises ``EventIdReused``:
        dropping it as a redelivery would silently lose a different message."""
        return bool(await self.first_time_many(consumer, {event_id: digest}))

    async def prepare(self, keys: Collection[str]) -> None:  # noqa: B027 - optional: nothing read ahead is right
        """Called by the runtime before the handlers of a fetched batch run, with the keys (order
        ids) of its new messages: a worker's unit of work may read and lock at once the rows they
        will need, one statement per table instead of one per message. By default nothing is read
        ahead; a handler that finds nothing prepared reads for itself, so this only saves work."""

    @abstractmethod
    async def first_time_many(self, consumer: str, events: dict[uuid.UUID, bytes | None]) -> set[uuid.UUID]:
        """Records a batch of events at once; returns the ids not seen before."""

    @abstractmethod
    async def unpublished(self, type_name: str, key: str) -> bool:
        """Whether this producer still has a ``type_name`` message for ``key`` waiting in the outbox
        (Kafka was unreachable): a resend schedule must not count an attempt nobody could see."""

    @abstractmethod
    async def set_aside(self, worker: str, job: str, item_id: str, order_id: str, error: str) -> None:
        """Quarantines one item of a periodic job (see ``quarantine``)."""

    @abstractmethod
    def savepoint(self) -> Any:
        """An async context manager: what happens inside is undone alone when it raises."""

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def _begin(self) -> None: ...

    @abstractmethod
    async def _rollback(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    def _stage(self, envelope: Envelope[Any], row: OutboxMessage) -> None: ...


class SqlUnitOfWork(UnitOfWork):
    """The PostgreSQL unit of work; a worker's subclass builds its repositories in ``_open``."""

    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession], producer: str) -> None:
        super().__init__(producer)
        self._sessions = sessions
        self._staged: dict[Executable, list[dict[str, Any]]] = {}  # rows kept back since the last write

    def _open(self, session: AsyncSession) -> None:
        """Sets the worker's repositories on this session (a worker's subclass overrides it)."""

    def _batch_rows(self) -> Sequence[BatchRows]:
        """The worker's repositories that read a batch's rows at once, in the worker's lock order
        (a worker's subclass names them; none by default)."""
        return ()

    async def prepare(self, keys: Collection[str]) -> None:
        for rows in self._batch_rows():
            await rows.read_batch(keys)

    async def _write_pending(self) -> None:
        for rows in self._batch_rows():
            await rows.write()

    def _drop_pending(self) -> None:
        for rows in self._batch_rows():
            rows.forget()

    async def _begin(self) -> None:
        self.session = self._sessions()
        await self.session.begin()
        self._open(self.session)

    async def _rollback(self) -> None:
        await self.session.rollback()

    async def _close(self) -> None:
        await self.session.close()

    async def commit(self) -> None:
        await self._write_all()
        await self.session.commit()
        self.committed = True

    def stage(self, statement: Executable, row: dict[str, Any]) -> None:
        """Keeps ``row`` back for ``statement`` (an insert built once): before the commit, and
        before a savepoint, each statement is executed once with all its rows, in the order they
        were staged; a savepoint that rolls back drops the rows it staged. The outbox and the
        ticket audit trail are written this way: one statement per transaction, not one per row."""
        self._staged.setdefault(statement, []).append(row)

    async def _write_all(self) -> None:
        await self._write_pending()
        staged, self._staged = self._staged, {}
        for statement, rows in staged.items():
            await self.session.execute(statement, rows)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        published = len(self.published)
        await self._write_all()  # what was kept back before the savepoint survives its rollback
        nested = await self.session.begin_nested()
        try:
            yield
        except BaseException:
            await nested.rollback()
            self._unpublish_from(published)
            self._drop_pending()
            self._staged.clear()
            raise
        await nested.commit()

    async def first_time_many(self, consumer: str, events: dict[uuid.UUID, bytes | None]) -> set[uuid.UUID]:
        if not events:
            return set()
        rows = [{"consumer": consumer, "event_id": e, "content_hash": h} for e, h in events.items()]
        fresh = set((await self.session.execute(_RECORD_IN_INBOX, rows)).scalars().all())
        seen = [e for e in events if e not in fresh and events[e] is not None]
        if seen:
            stored = (await self.session.execute(
                select(InboxRow.event_id, InboxRow.content_hash)
                .where(tuple_(InboxRow.consumer, InboxRow.event_id).in_([(consumer, e) for e in seen])))).all()
            reused = [e for e, h in stored if h is not None and h != events[e]]
            if reused:
                raise EventIdReused(reused)
        return fresh

    async def unpublished(self, type_name: str, key: str) -> bool:
        return (await self.session.execute(select(OutboxRow.id).where(
            OutboxRow.producer == self.producer, OutboxRow.type == type_name, OutboxRow.key == key,
            OutboxRow.published_at.is_(None)).limit(1))).first() is not None

    async def set_aside(self, worker: str, job: str, item_id: str, order_id: str, error: str) -> None:
        await self.session.execute(insert(QuarantinedItem).values(
            worker=worker, job=job, item_id=item_id, order_id=order_id, error=error[:300]
        ).on_conflict_do_nothing())

    def _stage(self, envelope: Envelope[Any], row: OutboxMessage) -> None:
        self.stage(_STAGE_IN_OUTBOX, row)
