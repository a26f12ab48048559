"""The dead-letter worker's data: every dead letter recorded once, listable, with replay marks;
and its unit of work (``uow.dead_letters``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tables import DeadLetterRow
from services.common.uow import SqlUnitOfWork, UnitOfWork

SCHEMA = "0002"  # inbox content hashes and quarantine: the oldest schema this worker runs on

class DeadLetters(Protocol):
    async def record(self, values: dict[str, Any]) -> bool:
        """False if this dead letter was recorded already (a redelivery)."""

    async def has_unsummarized(self) -> bool: ...

    async def unsummarized_counts(self) -> tuple[list[tuple[str, str, int]], datetime | None]:
        """Counts per (source topic, reason) not yet sent to ops, claimed for this transaction."""


class DeadLetterUnitOfWork(UnitOfWork):
    dead_letters: DeadLetters


class SqlDeadLetterUnitOfWork(SqlUnitOfWork, DeadLetterUnitOfWork):
    def _open(self, session: AsyncSession) -> None:
        self.dead_letters = DeadLetterRepository(session)


class DeadLetterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, values: dict[str, Any]) -> bool:
        stmt = insert(DeadLetterRow).values(**values).on_conflict_do_nothing().returning(
            DeadLetterRow.dead_letter_id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def get(self, dead_letter_id: uuid.UUID, *, lock: bool = False) -> DeadLetterRow | None:
        return await self.session.get(DeadLetterRow, dead_letter_id, with_for_update=lock)

    async def find(self, *, topic: str | None = None, reason: str | None = None, since: datetime | None = None,
                   limit: int = 100) -> list[DeadLetterRow]:
        stmt = select(DeadLetterRow).order_by(DeadLetterRow.failed_at.desc()).limit(limit)
        if topic:
            stmt = stmt.where(DeadLetterRow.source_topic == topic)
        if reason:
            stmt = stmt.where(DeadLetterRow.reason_code == reason)
        if since:
            stmt = stmt.where(DeadLetterRow.failed_at >= since)
        return list((await self.session.execute(stmt)).scalars().all())

    async def unsummarized_counts(self) -> tuple[list[tuple[str, str, int]], datetime | None]:
        """Counts per (source topic, reason) not yet sent to ops, claimed for this transaction."""
        rows = (await self.session.execute(
            select(DeadLetterRow.dead_letter_id, DeadLetterRow.source_topic, DeadLetterRow.reason_code,
                   DeadLetterRow.recorded_at)
            .where(DeadLetterRow.summarized.is_(False)).with_for_update(skip_locked=True).limit(10_000))).all()
        if not rows:
            return [], None
        await self.session.execute(update(DeadLetterRow).where(
            DeadLetterRow.dead_letter_id.in_([r.dead_letter_id for r in rows])).values(summarized=True))
        counts: dict[tuple[str, str], int] = {}
        for r in rows:
            counts[(r.source_topic, r.reason_code)] = counts.get((r.source_topic, r.reason_code), 0) + 1
        return [(t, c, n) for (t, c), n in sorted(counts.items())], min(r.recorded_at for r in rows)

    async def has_unsummarized(self) -> bool:
        return bool((await self.session.execute(select(func.count()).select_from(DeadLetterRow).where(
            DeadLetterRow.summarized.is_(False)))).scalar_one())
