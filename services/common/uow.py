"""Unit of work: one PostgreSQL transaction holding state changes, outgoing messages (outbox)
and the processed-event id (inbox). Either all of it commits or none of it does."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Contract, Envelope, encode, new_envelope, topic_of

from .tables import InboxRow, OutboxRow


class EventIdReused(Exception):  # noqa: N818 - named for what the message did
    """An event id already applied arrived with different content: not a redelivery."""

    def __init__(self, event_ids: list[uuid.UUID]) -> None:
        super().__init__(f"{len(event_ids)} event id(s) reused with different content")
        self.event_ids = event_ids


class UnitOfWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], producer: str) -> None:
        self._sessions = sessions
        self.producer = producer
        self.session: AsyncSession
        self.published: list[Envelope[Any]] = []
        self.committed = False

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        await self.session.begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if not self.committed:
            await self.session.rollback()
        await self.session.close()

    async def first_time(self, consumer: str, event_id: uuid.UUID, digest: bytes | None = None) -> bool:
        """Records the event as processed by ``consumer``; False if it already was (a redelivery).

        With the content's ``digest``, the same id with other content raises ``EventIdReused``:
        dropping it as a redelivery would silently lose a different message."""
        return bool(await self.first_time_many(consumer, {event_id: digest}))

    async def first_time_many(self, consumer: str, events: dict[uuid.UUID, bytes | None]) -> set[uuid.UUID]:
        """Records a batch of events in one statement; returns the ids not seen before."""
        if not events:
            return set()
        rows = [{"consumer": consumer, "event_id": e, "content_hash": h} for e, h in events.items()]
        stmt = insert(InboxRow).values(rows).on_conflict_do_nothing().returning(InboxRow.event_id)
        fresh = set((await self.session.execute(stmt)).scalars().all())
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
        """Whether this producer still has a ``type_name`` message for ``key`` waiting in the outbox
        (Kafka was unreachable): a resend schedule must not count an attempt nobody could see."""
        return (await self.session.execute(select(OutboxRow.id).where(
            OutboxRow.producer == self.producer, OutboxRow.type == type_name, OutboxRow.key == key,
            OutboxRow.published_at.is_(None)).limit(1))).first() is not None

    def publish(self, payload: Contract, *, key: str, cause: Envelope[Any] | None = None,
                topic: str | None = None) -> Envelope[Any]:
        """Adds a message to the outbox; it leaves for Kafka only if this transaction commits."""
        envelope = new_envelope(payload, key=key, producer=self.producer, cause=cause)
        self.session.add(OutboxRow(
            producer=self.producer, topic=topic or topic_of(type(payload)).name, key=key,
            event_id=envelope.event_id, type=envelope.type, value=encode(envelope)))
        self.published.append(envelope)
        return envelope

    async def commit(self) -> None:
        await self.session.commit()
        self.committed = True
