"""Review's data: the tickets it decides on (always locked while deciding), and its unit of work."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tickets import Tickets, TicketStore
from services.common.uow import BatchRows, SqlUnitOfWork, UnitOfWork
from services.domain import errors
from services.domain.ticket import Ticket

SCHEMA = "0013"  # tickets.reissue and tickets.delivery_refused: the oldest schema this worker runs on


class ReviewUnitOfWork(UnitOfWork):
    tickets: Tickets


class SqlReviewUnitOfWork(SqlUnitOfWork, ReviewUnitOfWork):
    """A batch's tickets are locked in one statement, in ticket id order; each decision or event
    then finds its ticket without one."""

    tickets: TicketStore

    def _open(self, session: AsyncSession) -> None:
        self.tickets = TicketStore(session, self.stage)

    def _batch_rows(self) -> Sequence[BatchRows]:
        return (self.tickets,)


async def ticket_of(uow: ReviewUnitOfWork, ticket_id: str, order_id: str) -> Ticket:
    """The ticket, locked; a named error when it is not this order's."""
    ticket = await uow.tickets.get(ticket_id)
    if ticket is None or ticket.order_id != order_id:
        raise errors.TicketUnknown(f"Ticket {ticket_id} does not exist for order {order_id}.")
    return ticket
