"""Relays committed outbox rows to Kafka, in order per key.

Two ways in, one sender:
- **handed over**: the worker hands the rows a transaction wrote to the relay right after the
  commit; they are sent in commit order and marked published by event id, without being read
  back (reading them back was a second transaction and a 100-row result per batch).
- **read from the table**, in id order, one relay per producer at a time (an advisory lock):
  at start (rows a crash left), when partitions are assigned (rows the previous owner committed
  for keys that are now this process's go first), after a failed send (the rows it held are
  still there), when woken without rows (the back office commits outside the worker), and when
  idle. Rows handed over before a read started are committed, so the read sends them: they
  are dropped from the hand-over, and what is handed over after the read goes after it.

A process whose partitions are revoked waits for its running batch and sends what it holds
before the group moves on (the runtime's rebalance listener), so the new owner's first read
sees every row the old owner committed for the keys it takes over.

At-least-once: a crash after Kafka acknowledged a batch but before the rows were marked, or a
read that overlaps another process's hand-over, publishes rows again; consumers' inboxes drop
the copies (same event_id).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .failures import describe
from .kafka import Producer
from .logging import get_logger
from .tables import InboxRow, OutboxRow

log = get_logger("outbox")

INBOX_RETENTION = timedelta(days=8)  # > log.retention.hours=168 of the broker

# Rows sent are marked in one statement per batch, by id (read from the table) or by event id
# (handed over; unique, indexed). An array parameter keeps one SQL text for every batch size,
# where an IN list made a new one (and a new prepared statement) for each.
_MARK_READ = (update(OutboxRow).where(OutboxRow.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
              .values(published_at=func.now()))
_MARK_HANDED = (update(OutboxRow)
                .where(OutboxRow.event_id == any_(bindparam("event_ids", type_=ARRAY(UUID(as_uuid=True)))))
                .values(published_at=func.now()))

OutboxMessage = dict[str, Any]
"""An outbox row as the unit of work wrote it: producer, topic, key, event_id, type, value."""


class OutboxRelay:
    def __init__(self, producer_name: str, sessions: async_sessionmaker[AsyncSession],
                 producer: Producer, *, batch: int = 500, poll_seconds: float = 0.5,
                 consumer_group: str | None = None, read_every_seconds: float = 1.0,
                 on_published: Callable[[str, int], None] = lambda topic, n: None) -> None:
        """``on_published(topic, n)``: ``n`` rows of ``topic`` are acknowledged by Kafka (for /metrics).
        ``read_every_seconds``: while rows are handed over, the table is still read this often
        (rows nobody handed over or woke the relay for, a tool's, do not wait for a quiet moment)."""
        self.producer_name = producer_name
        self.consumer_group = consumer_group or producer_name
        self._sessions = sessions
        self._producer = producer
        self._batch = batch
        self._poll = poll_seconds
        self._read_every = read_every_seconds
        self._wake = asyncio.Event()
        self._lock_key = zlib.crc32(f"outbox:{producer_name}".encode())
        self.relayed = 0
        self._on_published = on_published
        self._handed: list[OutboxMessage] = []  # committed, not yet sent, in commit order
        self._running = False
        self._read_table = True  # rows a crash left may wait: the first round reads the table
        self._asked = 0  # reads asked for (wake, assignment); a read clears only those before it
        self._last_read = 0.0
        self._handed_total = 0  # rows ever handed over, and of those, sent or left to the table
        self._settled_total = 0
        self._settled = asyncio.Event()

    def wake(self) -> None:
        """Rows were committed that nobody hands over: the table is read."""
        self._ask_for_read()

    def hand_over(self, rows: Sequence[OutboxMessage]) -> None:
        """Rows a transaction of this process has just committed, in the order it wrote them.
        A relay that is not running keeps none: they wait in the table for whoever reads it (a
        rebuild drives the workers without their relays and drains the outbox itself)."""
        if rows and self._running:
            self._handed.extend(rows)
            self._handed_total += len(rows)
            self._wake.set()

    def read_table_first(self) -> None:
        """Partitions were assigned: rows another process committed for their keys go before any
        row this process hands over for them."""
        self._ask_for_read()

    def _ask_for_read(self) -> None:
        self._asked += 1
        self._read_table = True
        self._wake.set()

    async def flush(self, timeout: float) -> None:
        """Waits (at most ``timeout``) until every row handed over so far is sent, or left in the
        table after a failed send (the next read anywhere sends it)."""
        target = self._handed_total
        self._wake.set()

        async def settled() -> None:
            while self._settled_total < target:
                self._settled.clear()
                await self._settled.wait()

        try:
            await asyncio.wait_for(settled(), timeout)
        except TimeoutError:
            log.warning("outbox_flush_incomplete", producer=self.producer_name,
                        waiting=target - self._settled_total)

    def _settle(self, n: int) -> None:
        self._settled_total += n
        self._settled.set()

    async def run(self) -> None:
        self._running = True
        try:
            await self._run()
        finally:
            self._running = False
            self._give_back()  # nothing held outlives the loop: the table has it

    async def _run(self) -> None:
        last_cleanup = datetime.now(UTC)
        while True:
            try:
                sent = await self._relay_next()
            except Exception as exc:  # the relay must survive broker or database hiccups; rows stay pending
                log.warning("outbox_relay_failed", producer=self.producer_name, error=describe(exc))
                self._give_back()
                await asyncio.sleep(1.0)
                continue
            if sent:
                continue
            if datetime.now(UTC) - last_cleanup > timedelta(minutes=10):
                await self.delete_published(older_than=timedelta(days=1))
                await self.forget_processed(older_than=INBOX_RETENTION)
                last_cleanup = datetime.now(UTC)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            except TimeoutError:  # idle for a poll: the table is read (what the old relay did always)
                self._read_table = True

    async def _relay_next(self) -> int:
        """One round: the table when it must be read or is due, else what was handed over."""
        now = asyncio.get_running_loop().time()
        if self._read_table or now - self._last_read >= self._read_every:
            sent = await self._read()
            if sent is not None:
                return sent
            self._last_read = now  # another process reads the table now: it sends what waits there
            if self._read_table:  # the order needs our own read first: tried again at the next wake
                return 0
        if self._handed:
            return await self._send_handed()
        return 0

    def _give_back(self) -> None:
        """A send or a mark failed: what is held stays in the table, which is read next."""
        self._settle(len(self._handed))
        self._handed.clear()
        self._read_table = True

    async def _send_handed(self) -> int:
        rows = self._handed[:self._batch]
        await self._producer.send_batch(
            [(row["topic"], row["value"], row["key"].encode(), [("type", row["type"].encode())]) for row in rows])
        del self._handed[:len(rows)]  # sent: a failed mark below resends them (a copy), never loses them
        self._settle(len(rows))
        async with self._sessions() as session, session.begin():
            await session.execute(_MARK_HANDED, {"event_ids": [row["event_id"] for row in rows]})
        self._count([row["topic"] for row in rows])
        return len(rows)

    def _count(self, topics: list[str]) -> None:
        self.relayed += len(topics)
        for topic, n in Counter(topics).items():
            self._on_published(topic, n)

    def _drop_handed(self, held: int, read: set[Any]) -> None:
        """Drops from the hand-over what a read sends: the rows held when it started (committed,
        so read now or by the reads that follow) and any handed over since that it found."""
        kept = [row for row in self._handed[held:] if row["event_id"] not in read]
        self._settle(len(self._handed) - len(kept))
        self._handed[:] = kept

    async def relay_once(self) -> int:
        """Publishes one batch read from the table and marks it; returns how many rows it published."""
        return await self._read() or 0

    async def _read(self) -> int | None:
        """``relay_once``; None if another process holds the table's lock. Once a read finds fewer
        rows than a batch, the table is drained of what was committed before it started, and
        the rows handed over meanwhile are sent next."""
        async with self._sessions() as session, session.begin():
            got_lock = (await session.execute(
                select(func.pg_try_advisory_xact_lock(self._lock_key)))).scalar_one()
            if not got_lock:
                return None
            self._last_read = asyncio.get_running_loop().time()
            asked, held = self._asked, len(self._handed)  # held: committed before this read, which sends them
            rows = (await session.execute(
                select(OutboxRow.id, OutboxRow.event_id, OutboxRow.topic, OutboxRow.key, OutboxRow.value,
                       OutboxRow.type)
                .where(OutboxRow.producer == self.producer_name, OutboxRow.published_at.is_(None))
                .order_by(OutboxRow.id).limit(self._batch))).all()
            self._drop_handed(held, {row.event_id for row in rows})
            if rows:
                await self._producer.send_batch(
                    [(row.topic, row.value, row.key.encode(), [("type", row.type.encode())]) for row in rows])
                await session.execute(_MARK_READ, {"ids": [row.id for row in rows]})
        if len(rows) < self._batch and asked == self._asked:  # drained, sent, and nobody asked since
            self._read_table = False
        self._count([row.topic for row in rows])
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
