"""Review's data: the tickets it decides on (always locked while deciding)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tickets import TicketStore
from services.domain import errors
from services.domain.ticket import Ticket


class ReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.tickets = TicketStore(session)

    async def ticket(self, ticket_id: str, order_id: str) -> Ticket:
        ticket = await self.tickets.get(ticket_id)
        if ticket is None or ticket.order_id != order_id:
            raise errors.TicketUnknown(f"Ticket {ticket_id} does not exist for order {order_id}.")
        return ticket
