"""Unit of work: one PostgreSQL transaction holding state changes, outgoing messages (outbox)
and the processed-event id (inbox). Either all of it commits or none of it does."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Contract, Envelope, encode, new_envelope, topic_of

from .tables import InboxRow, OutboxRow


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

    async def first_time(self, consumer: str, event_id: uuid.UUID) -> bool:
        """Records the event as processed by ``consumer``; False if it already was (a redelivery)."""
        stmt = (insert(InboxRow).values(consumer=consumer, event_id=event_id)
                .on_conflict_do_nothing().returning(InboxRow.event_id))
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def first_time_many(self, consumer: str, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Records a batch of events in one statement; returns the ids not seen before."""
        if not event_ids:
            return set()
        rows = [{"consumer": consumer, "event_id": e} for e in dict.fromkeys(event_ids)]
        stmt = insert(InboxRow).values(rows).on_conflict_do_nothing().returning(InboxRow.event_id)
        return set((await self.session.execute(stmt)).scalars().all())

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
