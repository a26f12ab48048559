"""Reasons catalogue administration, with a Redis read cache for listings.

PostgreSQL is the only copy. Intake checks a request's reason in PostgreSQL inside the
request's transaction, so a stale cache can never let a hidden or deleted reason through;
the cache only speeds up listings and is dropped after every change.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.model import AfterSalesType
from services.domain.reasons import DEFAULT_REASONS, Reason

from .repository import ReasonRepository

CACHE_TTL_SECONDS = 300


def _key(ticket_type: AfterSalesType) -> str:
    return f"aftersales:reasons:{ticket_type.value}"


class ReasonCatalogue:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], redis: Redis) -> None:
        self._sessions = sessions
        self._redis = redis

    async def visible(self, ticket_type: AfterSalesType) -> list[dict[str, object]]:
        cached = await self._redis.get(_key(ticket_type))
        if cached is not None:
            return json.loads(cached)  # type: ignore[no-any-return]
        async with self._sessions() as session:
            reasons = await ReasonRepository(session).listing(ticket_type)
        listing = [{"code": r.code, "label": r.label, "needs_evidence": r.needs_evidence} for r in reasons]
        await self._redis.set(_key(ticket_type), json.dumps(listing), ex=CACHE_TTL_SECONDS)
        return listing

    async def all(self, ticket_type: AfterSalesType) -> list[Reason]:
        async with self._sessions() as session:
            return await ReasonRepository(session).listing(ticket_type, include_hidden=True)

    async def add(self, ticket_type: AfterSalesType, code: str, label: str) -> None:
        await self._change(ticket_type, lambda repo: repo.upsert(ticket_type, code, label))

    async def edit(self, ticket_type: AfterSalesType, code: str, label: str) -> None:
        async def edit_label(repo: ReasonRepository) -> None:
            current = await repo.get(ticket_type, code)
            if current is None:
                raise KeyError(code)
            await repo.upsert(ticket_type, code, label, visible=current.visible, position=current.position)
        await self._change(ticket_type, edit_label)

    async def hide(self, ticket_type: AfterSalesType, code: str, hidden: bool = True) -> None:
        async def toggle(repo: ReasonRepository) -> None:
            if not await repo.set_visible(ticket_type, code, not hidden):
                raise KeyError(code)
        await self._change(ticket_type, toggle)

    async def delete(self, ticket_type: AfterSalesType, code: str) -> None:
        async def remove(repo: ReasonRepository) -> None:
            if not await repo.delete(ticket_type, code):
                raise KeyError(code)
        await self._change(ticket_type, remove)

    async def reorder(self, ticket_type: AfterSalesType, codes: list[str]) -> None:
        await self._change(ticket_type, lambda repo: repo.reorder(ticket_type, codes))

    async def seed_defaults(self) -> int:
        """Seeds DOMAIN.md's reasons when the catalogue is empty; returns how many it added."""
        added = await seed_default_reasons(self._sessions)
        for ticket_type in AfterSalesType:
            await self._redis.delete(_key(ticket_type))
        return added

    async def _change(self, ticket_type: AfterSalesType,
                      change: Callable[[ReasonRepository], Awaitable[object]]) -> None:
        async with self._sessions() as session, session.begin():
            await change(ReasonRepository(session))
        await self._redis.delete(_key(ticket_type))


async def seed_default_reasons(sessions: async_sessionmaker[AsyncSession]) -> int:
    """DOMAIN.md's reasons into an empty catalogue (PostgreSQL only; the caller drops any cache)."""
    added = 0
    async with sessions() as session, session.begin():
        repo = ReasonRepository(session)
        if not await repo.is_empty():
            return 0
        for reason in DEFAULT_REASONS:
            for ticket_type in reason.types:
                await repo.upsert(ticket_type, reason.code, reason.label, position=reason.position)
                added += 1
    return added
