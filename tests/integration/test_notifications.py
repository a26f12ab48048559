"""The notifications worker's buyer deadlines on PostgreSQL: a fetched batch reads and locks the
deadlines of its orders in one statement, and the changes of its tickets then find them (or
know there is none) without a statement each, and keep them current."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from contracts import Money, new_envelope
from contracts import aftersales as c
from services.common.settings import Settings
from services.common.tables import BuyerDeadlineRow
from services.notifications import service
from services.notifications.repository import SqlNotificationsUnitOfWork

from .helpers import Statements

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def view(order_id: str, status: c.TicketStatus, deadline: datetime | None = None) -> c.TicketView:
    line = c.TicketLineView(line_no=1, sku="SKU-1", quantity=1, cap=Money.cny(5_000), refund=Money.cny(5_000))
    return c.TicketView(ticket_id=uuid.uuid4().hex, ticket_no=f"AS{uuid.uuid4().hex[:8]}", order_id=order_id,
                        shop_id="shop-1", buyer_id=f"buyer-{order_id}", type=c.AfterSalesType.RETURN_AND_REFUND,
                        status=status, lines=[line], refund_total=Money.cny(5_000), applied_at=NOW,
                        deadline_at=deadline)


def changed(ticket: c.TicketView, before: c.TicketStatus, after: c.TicketStatus,
            deadline: datetime | None = None) -> Any:
    moved = ticket.model_copy(update={"status": after, "deadline_at": deadline})
    return new_envelope(c.TicketStatusChanged(ticket=moved, from_status=before, to_status=after,
                                              actor=c.Actor(role=c.Role.OPS, id="ops-it"), reason=""),
                        key=ticket.order_id, producer="review")


async def deadlines_of(sessions: Any, order_id: str) -> dict[str, tuple[str, datetime]]:
    async with sessions() as session:
        rows = (await session.execute(select(BuyerDeadlineRow).where(BuyerDeadlineRow.order_id == order_id))).scalars()
        return {row.ticket_id: (row.status, row.deadline_at) for row in rows}


async def test_a_batch_reads_its_orders_deadlines_once_and_keeps_them_current(stack: Settings, sessions: Any) -> None:
    order_id = f"O-{uuid.uuid4().hex[:12]}"
    waiting = view(order_id, c.TicketStatus.PENDING_REVIEW)
    other = view(order_id, c.TicketStatus.PENDING_REVIEW)
    deps = service.Deps(stack, lambda: NOW)
    deadline = NOW + timedelta(days=7)
    async with SqlNotificationsUnitOfWork(sessions, "notifications") as uow:  # no batch read: one by one, as before
        await service.ticket_changed(changed(waiting, c.TicketStatus.PENDING_REVIEW, c.TicketStatus.AWAITING_RETURN,
                                             deadline), uow, deps)
        await uow.commit()
    assert await deadlines_of(sessions, order_id) == {waiting.ticket_id: ("AWAITING_RETURN", deadline)}

    async with SqlNotificationsUnitOfWork(sessions, "notifications") as uow:
        await uow.prepare({order_id})
        with Statements(sessions) as statements:
            assert (await uow.deadlines.get(waiting.ticket_id, order_id)).deadline_at == deadline
            assert await uow.deadlines.get(other.ticket_id, order_id) is None  # none: the batch read them all
        assert statements.sent == []
        async with sessions() as rival:  # the batch's read locked the order's deadlines
            await rival.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(DBAPIError, match="lock timeout"):
                await rival.execute(select(BuyerDeadlineRow).where(
                    BuyerDeadlineRow.ticket_id == waiting.ticket_id).with_for_update())

        later = deadline + timedelta(days=2)  # the deadline moves, then the other ticket starts waiting
        await service.ticket_changed(changed(waiting, c.TicketStatus.AWAITING_RETURN, c.TicketStatus.AWAITING_RETURN,
                                             later), uow, deps)
        await service.ticket_changed(changed(other, c.TicketStatus.PENDING_REVIEW, c.TicketStatus.AWAITING_RETURN,
                                             later), uow, deps)
        assert (await uow.deadlines.get(waiting.ticket_id, order_id)).deadline_at == later
        assert (await uow.deadlines.get(other.ticket_id, order_id)).status == "AWAITING_RETURN"

        async def received_then_failed() -> None:  # a message that fails alone: what it did is undone
            async with uow.savepoint():
                await service.ticket_changed(changed(waiting, c.TicketStatus.AWAITING_RETURN,
                                                     c.TicketStatus.AWAITING_RECEIPT), uow, deps)
                assert await uow.deadlines.get(waiting.ticket_id, order_id) is None  # no longer waits on the buyer
                raise RuntimeError("the rest of the message failed")
        with pytest.raises(RuntimeError):
            await received_then_failed()
        assert (await uow.deadlines.get(waiting.ticket_id, order_id)).deadline_at == later
        await service.ticket_changed(changed(other, c.TicketStatus.AWAITING_RETURN, c.TicketStatus.CLOSED),
                                     uow, deps)
        await uow.commit()
    assert await deadlines_of(sessions, order_id) == {waiting.ticket_id: ("AWAITING_RETURN", later)}
