"""Relays committed outbox rows to Kafka, in order, one relay per producer at a time.

At-least-once: a crash after Kafka acknowledged a batch but before the rows were marked
publishes that batch again on restart; consumers' inboxes drop the copies (same event_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .failures import describe
from .kafka import Producer
from .logging import get_logger
from .tables import InboxRow, OutboxRow

log = get_logger("outbox")

INBOX_RETENTION = timedelta(days=8)  # > log.retention.hours=168 of the broker


class OutboxRelay:
    def __init__(self, producer_name: str, sessions: async_sessionmaker[AsyncSession],
                 producer: Producer, *, batch: int = 500, poll_seconds: float = 0.5,
                 consumer_group: str | None = None,
                 on_published: Callable[[str, int], None] = lambda topic, n: None) -> None:
        """``on_published(topic, n)``: ``n`` rows of ``topic`` are acknowledged by Kafka (for /metrics)."""
        self.producer_name = producer_name
        self.consumer_group = consumer_group or producer_name
        self._sessions = sessions
        self._producer = producer
        self._batch = batch
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._lock_key = zlib.crc32(f"outbox:{producer_name}".encode())
        self.relayed = 0
        self._on_published = on_published

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        last_cleanup = datetime.now(UTC)
        while True:
            try:
                sent = await self.relay_once()
            except Exception as exc:  # the relay must survive broker or database hiccups; rows stay pending
                log.warning("outbox_relay_failed", producer=self.producer_name, error=describe(exc))
                await asyncio.sleep(1.0)
                continue
            if sent:
                continue
            if datetime.now(UTC) - last_cleanup > timedelta(minutes=10):
                await self.delete_published(older_than=timedelta(days=1))
                await self.forget_processed(older_than=INBOX_RETENTION)
                last_cleanup = datetime.now(UTC)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    async def relay_once(self) -> int:
        """Publishes one batch and marks it; returns how many rows it published."""
        async with self._sessions() as session, session.begin():
            got_lock = (await session.execute(
                select(func.pg_try_advisory_xact_lock(self._lock_key)))).scalar_one()
            if not got_lock:
                return 0
            rows = (await session.execute(
                select(OutboxRow.id, OutboxRow.topic, OutboxRow.key, OutboxRow.value, OutboxRow.type)
                .where(OutboxRow.producer == self.producer_name, OutboxRow.published_at.is_(None))
                .order_by(OutboxRow.id).limit(self._batch))).all()
            if not rows:
                return 0
            await self._producer.send_batch(
                [(row.topic, row.value, row.key.encode(), [("type", row.type.encode())]) for row in rows])
            await session.execute(
                update(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows]))
                .values(published_at=func.now()))
        self.relayed += len(rows)
        for topic, n in Counter(row.topic for row in rows).items():
            self._on_published(topic, n)
        return len(rows)

    async def forget_processed(self, older_than: timedelta) -> None:
        """Inbox ids are kept longer than Kafka keeps messages (7 days), so no redelivery outlives them."""
        async with self._sessions() as session, session.begin():
            await session.execute(delete(InboxRow).where(
                InboxRow.consumer == self.consumer_group,
                InboxRow.processed_at < datetime.now(UTC) - older_than))

    async def delete_published(self, older_than: timedelta) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(OutboxRow).where(
                OutboxRow.producer == self.producer_name,
                OutboxRow.published_at < datetime.now(UTC) - older_than))


async def outbox_backlog(sessions: async_sessionmaker[AsyncSession], producer_name: str) -> tuple[int, datetime | None]:
    """How many of the producer's rows wait, and when the oldest was written (the partial index
    on unpublished rows keeps this cheap however long the outbox's history)."""
    async with sessions() as session:
        row = (await session.execute(select(func.count(), func.min(OutboxRow.created_at)).where(
            OutboxRow.producer == producer_name, OutboxRow.published_at.is_(None)))).one()
    return int(row[0]), row[1]
