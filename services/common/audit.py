"""Reading a ticket's negotiation history back in order (used by the CLI and back office)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from .db import make_engine, make_session_factory
from .settings import Settings
from .tables import TicketRow
from .tickets import TicketStore


async def read_history(settings: Settings, ticket_ref: str) -> list[dict[str, Any]]:
    engine = make_engine(settings)
    try:
        async with make_session_factory(engine)() as session:
            ticket_id = (await session.execute(select(TicketRow.ticket_id).where(
                or_(TicketRow.ticket_id == ticket_ref, TicketRow.ticket_no == ticket_ref)))).scalar()
            if ticket_id is None:
                raise SystemExit(f"no ticket {ticket_ref}")
            rows = await TicketStore(session).history(ticket_id)
            return [{c: getattr(r, c) for c in ("at", "from_status", "to_status", "actor_role", "actor_id",
                                                "action", "reason", "amount_before_cents",
                                                "amount_after_cents")} for r in rows]
    finally:
        await engine.dispose()
