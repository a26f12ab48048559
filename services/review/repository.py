"""Review's data: the tickets it decides on (always locked while deciding), and its unit of work."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tickets import Tickets, TicketStore
from services.common.uow import SqlUnitOfWork, UnitOfWork
from services.domain import errors
from services.domain.ticket import Ticket

SCHEMA = "0013"  # tickets.reissue and tickets.delivery_refused: the oldest schema this worker runs on

class ReviewUnitOfWork(UnitOfWork):
    tickets: Tickets


class SqlReviewUnitOfWork(SqlUnitOfWork, ReviewUnitOfWork):
    def _open(self, session: AsyncSession) -> None:
        self.tickets = TicketStore(session)


async def ticket_of(uow: ReviewUnitOfWork, ticket_id: str, order_id: str) -> Ticket:
    """The ticket, locked; a named error when it is not this order's."""
    ticket = await uow.tickets.get(ticket_id)
    if ticket is None or ticket.order_id != order_id:
        raise errors.TicketUnknown(f"Ticket {ticket_id} does not exist for order {order_id}.")
    return ticket
