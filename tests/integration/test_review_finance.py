"""Review and finance on the real database: races resolve to one outcome, money moves once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts import aftersales as c
from contracts import decisions as d
from contracts import new_envelope
from contracts.topics import REJECTIONS
from services.common.bus import Bus
from services.common.failures import ConcurrentUpdate
from services.common.tables import OutboxRow, RefundLedgerRow, RefundRow, TicketAuditRow, TicketRow
from services.common.tickets import TicketStore
from services.domain import errors
from services.finance import service as finance
from services.finance.repository import SqlFinanceUnitOfWork
from services.intake.repository import SqlIntakeUnitOfWork
from services.review import handlers as review_handlers
from services.review import service as review
from services.review.app import build_worker
from services.review.repository import SqlReviewUnitOfWork

from .helpers import open_ticket, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")


def clock() -> datetime:
    return datetime.now(UTC)


REVIEW_ROUTES = {r.message: r.use_case for sub in review_handlers.subscriptions() for r in sub.routes}


async def decide(sessions: Any, settings: Any, message: type, ticket: Any, role: str, who: str, **kw: Any) -> None:
    """A back-office decision through the use case review registers for its message type."""
    cmd = message(ticket_id=ticket.ticket_id, order_id=ticket.order_id, actor=c.Actor(role=c.Role(role), id=who), **kw)
    async with SqlReviewUnitOfWork(sessions, "review") as uow:
        await REVIEW_ROUTES[message](new_envelope(cmd, key=ticket.order_id, producer="test"), uow,
                                     review.Deps(settings, clock))
        await uow.commit()


async def reload(sessions: Any, ticket_id: str) -> Any:
    async with sessions() as session:
        return await TicketStore(session).get(ticket_id, lock=False)


async def actions(sessions: Any, ticket_id: str) -> list[str]:
    async with sessions() as session:
        return list((await session.execute(select(TicketAuditRow.action).where(
            TicketAuditRow.ticket_id == ticket_id).order_by(TicketAuditRow.id))).scalars().all())


async def race(*coros: Any) -> list[Any]:
    return await asyncio.gather(*coros, return_exceptions=True)


async def test_double_approve_resolves_to_one_approval(stack, sessions):
    t = await open_ticket(sessions, stack)
    results = await race(decide(sessions, stack, d.ApproveTicket, t, "ops", "ops-1"),
                         decide(sessions, stack, d.ApproveTicket, t, "ops", "ops-2"))
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, errors.IllegalTransition) for r in results) == 1
    assert (await reload(sessions, t.ticket_id)).status.value == "PENDING_REFUND"
    assert (await actions(sessions, t.ticket_id)).count("approve") == 1


async def test_a_transitions_audit_rows_commit_with_it_and_a_savepoint_that_rolls_back_drops_its_own(stack,
                                                                                                      sessions):
    """Audit rows are kept back and written with the outbox in one statement at the commit: what
    a failed message did inside its savepoint leaves no audit row and no message, and what came
    before the savepoint stays."""
    adjusted, approved = await open_ticket(sessions, stack), await open_ticket(sessions, stack)
    deps = review.Deps(stack, clock)
    ops = c.Actor(role=c.Role.OPS, id="ops-audit")

    def command(message: type, ticket: Any, **kw: Any) -> Any:
        payload = message(ticket_id=ticket.ticket_id, order_id=ticket.order_id, actor=ops, **kw)
        return new_envelope(payload, key=ticket.order_id, producer="test")

    async def approved_then_failed(uow: SqlReviewUnitOfWork) -> None:
        async with uow.savepoint():
            await REVIEW_ROUTES[d.ApproveTicket](command(d.ApproveTicket, approved), uow, deps)
            raise RuntimeError("the rest of the message failed")

    async with SqlReviewUnitOfWork(sessions, "review") as uow:
        await uow.prepare({adjusted.order_id, approved.order_id})
        await REVIEW_ROUTES[d.AdjustRefundAmount](command(d.AdjustRefundAmount, adjusted, lines=[
            d.LineAmount(line_no=1, refund_cents=5_000)], reason="partial"), uow, deps)
        with pytest.raises(RuntimeError):
            await approved_then_failed(uow)
        await uow.commit()
    assert (await actions(sessions, adjusted.ticket_id))[-1] == "adjust_refund"
    assert await actions(sessions, approved.ticket_id) == ["open"]
    assert (await reload(sessions, approved.ticket_id)).status.value == "PENDING_REVIEW"
    async with sessions() as session:
        staged = (await session.execute(select(OutboxRow.key, OutboxRow.type).where(
            OutboxRow.key.in_([adjusted.order_id, approved.order_id]), OutboxRow.producer == "review"))).all()
    assert {key for key, _ in staged} == {adjusted.order_id}


async def test_approve_versus_withdraw_has_one_winner(stack, sessions):
    auto = stack.with_changes(policy='{"finance_auto_approve_refund_only": true}')
    for _ in range(3):
        t = await open_ticket(sessions, auto)
        withdraw = c.WithdrawTicket(ticket_id=t.ticket_id, order_id=t.order_id, buyer_id="buyer-it")

        async def buyer_withdraws(withdraw: c.WithdrawTicket = withdraw) -> None:
            from services.intake import service as intake
            async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
                await intake.withdraw(new_envelope(withdraw, key=withdraw.order_id, producer="t"), uow,
                                      intake.Deps(auto, clock))
                await uow.commit()

        results = await race(decide(sessions, auto, d.ApproveTicket, t, "ops", "ops-1"), buyer_withdraws())
        assert sum(r is None for r in results) == 1
        final = (await reload(sessions, t.ticket_id)).status.value
        assert final == ("REFUNDING" if results[0] is None else "CLOSED")


async def test_finance_approve_versus_send_back_has_one_winner(stack, sessions):
    t = await open_ticket(sessions, stack)
    await decide(sessions, stack, d.ApproveTicket, t, "ops", "ops-1")
    results = await race(decide(sessions, stack, d.ApproveRefund, t, "finance", "fin-1"),
                         decide(sessions, stack, d.SendBackRefund, t, "finance", "fin-2", reason="check"))
    assert sum(r is None for r in results) == 1
    final = (await reload(sessions, t.ticket_id)).status.value
    assert final == ("REFUNDING" if results[0] is None else "PENDING_REVIEW")


@pytest.mark.parametrize(("message", "role", "fields", "error"), [
    (d.ApproveTicket, "buyer", {}, errors.NotPermitted),
    (d.ApproveRefund, "finance", {}, errors.IllegalTransition),
    (d.AdjustRefundAmount, "ops", {"lines": [d.LineAmount(line_no=1, refund_cents=999_999)], "reason": "x"},
     errors.AmountAboveCap),
    (d.AdjustRefundAmount, "ops", {"lines": [d.LineAmount(line_no=1, refund_cents=-500)], "reason": "x"},
     errors.InvalidAmount),
    (d.RejectTicket, "finance", {"reason": "no"}, errors.NotPermitted),
])
async def test_bad_commands_are_refused_and_change_nothing(stack, sessions, message, role, fields, error):
    t = await open_ticket(sessions, stack)
    with pytest.raises(error):
        await decide(sessions, stack, message, t, role, "someone", **fields)
    after = await reload(sessions, t.ticket_id)
    assert after.version == t.version
    assert after.status == t.status
    assert after.lines == t.lines


async def test_refused_commands_reach_the_rejection_topic(stack, sessions, marks):
    t = await open_ticket(sessions, stack)
    app = build_worker(stack).build_app()
    await app.start()
    try:
        async with Bus(stack) as bus:
            await bus.publish(d.ApproveRefund(ticket_id=t.ticket_id, order_id=t.order_id,
                                              actor=c.Actor(role=c.Role.FINANCE, id="fin-1")), key=t.order_id)
            await bus.publish(d.ApproveTicket(ticket_id="no-such-ticket", order_id=t.order_id,
                                              actor=c.Actor(role=c.Role.OPS, id="ops-1")), key=t.order_id)
            await bus.publish(d.AdjustRefundAmount(
                ticket_id=t.ticket_id, order_id=t.order_id, actor=c.Actor(role=c.Role.OPS, id="ops-1"),
                lines=[d.LineAmount(line_no=1, refund_cents=-1)], reason="oops"), key=t.order_id)
        seen = await read_topic(stack, REJECTIONS.name, lambda e: e.key == t.order_id, 3, since=marks)
        assert sorted(e.payload.code for e in seen) == ["ILLEGAL_TRANSITION", "INVALID_AMOUNT", "TICKET_UNKNOWN"]
        assert all(e.payload.message for e in seen)
    finally:
        await app.stop()


AUTO_FINANCE = '{"finance_auto_approve_refund_only": true}'


async def refunding_ticket(sessions: Any, settings: Any, take: int = 2) -> Any:
    auto = settings.with_changes(policy=AUTO_FINANCE)
    t = await open_ticket(sessions, auto, take=take)
    await decide(sessions, auto, d.ApproveTicket, t, "ops", "ops-1")
    return await reload(sessions, t.ticket_id)


async def start(sessions: Any, settings: Any, ticket_id: str) -> None:
    """Finance starts the refund under the same shop policy review approved it with (finance
    checks again whether automatic approval still holds for the order's total)."""
    async with SqlFinanceUnitOfWork(sessions, "finance") as uow:
        await finance.start_refund(ticket_id, uow, finance.Deps(settings.with_changes(policy=AUTO_FINANCE), clock),
                                   None)
        await uow.commit()


async def test_duplicate_refund_starts_create_one_refund(stack, sessions):
    t = await refunding_ticket(sessions, stack)
    await race(*(start(sessions, stack, t.ticket_id) for _ in range(4)))
    async with sessions() as session:
        refunds = (await session.execute(select(RefundRow).where(RefundRow.ticket_id == t.ticket_id))).scalars().all()
        commands = (await session.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.type == "ExecuteRefund", OutboxRow.key == t.order_id))).scalar_one()
    assert len(refunds) == 1
    assert commands == 1


async def test_two_refunds_racing_for_the_last_units_of_a_line_cannot_both_pass(stack, sessions):
    """Two tickets that both hold the line's last unit (as a bad data fix could make them):
    the ledger lock lets one refund through and refuses the other with an alert."""
    t = await refunding_ticket(sessions, stack, take=3)
    twin_id = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        row = await session.get(TicketRow, t.ticket_id)
        clone = {col.name: getattr(row, col.name) for col in TicketRow.__table__.columns}
        clone.update(ticket_id=twin_id, ticket_no=f"AS-TWIN-{twin_id[:8]}", request_id=uuid.uuid4())
        session.add(TicketRow(**clone))
    await race(start(sessions, stack, t.ticket_id), start(sessions, stack, twin_id))
    statuses = sorted([(await reload(sessions, t.ticket_id)).status.value,
                       (await reload(sessions, twin_id)).status.value])
    assert statuses == ["REFUNDING", "REFUND_FAILED"]
    async with sessions() as session:
        ledger = await session.get(RefundLedgerRow, t.order_id)
        alerts = (await session.execute(select(OutboxRow.value).where(
            OutboxRow.type == "OpsAlert", OutboxRow.key == t.order_id))).scalars().all()
    assert ledger.lines["1"]["reserved_cents"] == 10_000
    assert any(b"REFUND_FAILED" in a and b"exceed" in a for a in alerts)


async def test_two_refunding_events_in_one_batch_start_one_refund(stack, sessions):
    """The intercept answer can arrive while the ticket is already REFUNDING (REFUNDING→REFUNDING);
    both events may land in one fetched batch, one transaction. One approval, one refund start."""
    from services.common.tickets import view

    t = await open_ticket(sessions, stack, take=2)
    await decide(sessions, stack, d.ApproveTicket, t, "ops", "ops-1")
    await decide(sessions, stack, d.ApproveRefund, t, "finance", "fin-1")
    refunding = (await reload(sessions, t.ticket_id))
    snapshot = view(refunding)
    events = [c.TicketStatusChanged(ticket=snapshot, from_status=c.TicketStatus.PENDING_REFUND,
                                    to_status=c.TicketStatus.REFUNDING, actor=c.Actor(role=c.Role.FINANCE, id="fin-1")),
              c.TicketStatusChanged(ticket=snapshot, from_status=c.TicketStatus.REFUNDING,
                                    to_status=c.TicketStatus.REFUNDING, actor=c.Actor(role=c.Role.SYSTEM, id="system"),
                                    reason="intercept result recorded")]
    async with SqlFinanceUnitOfWork(sessions, "finance") as uow:
        for event in events:
            await finance.on_ticket_changed(new_envelope(event, key=t.order_id, producer="review"), uow,
                                            finance.Deps(stack, clock))
        await uow.commit()
        starts = [e for e in uow.published if e.type == "ExecuteRefund"]
    async with sessions() as session:
        refunds = (await session.execute(select(RefundRow).where(RefundRow.ticket_id == t.ticket_id))).scalars().all()
    assert len(refunds) == 1
    assert len(starts) == 1
    assert (await reload(sessions, t.ticket_id)).status.value == "REFUNDING"


async def test_a_ticket_saved_from_a_stale_read_is_refused_and_a_batch_keeps_its_locked_tickets_current(stack,
                                                                                                         sessions):
    """The version check on top of the row lock: a save from a copy read before another save
    raises ConcurrentUpdate (retried as infrastructure). Tickets a batch locked at once
    (``read_batch``) are served and kept current by the store, so a second save in the same
    transaction passes the check."""
    ticket = await open_ticket(sessions, stack)
    async with sessions() as first, first.begin():
        stale = await TicketStore(first).get(ticket.ticket_id, lock=False)
    async with sessions() as session, session.begin():
        store = TicketStore(session)
        await store.read_batch([ticket.order_id])
        fresh = await store.get(ticket.ticket_id)
        await store.save(fresh)
        again = await store.get(ticket.ticket_id)
        assert again.version == fresh.version
        await store.save(again)
    async with sessions() as late, late.begin():
        with pytest.raises(ConcurrentUpdate):
            await TicketStore(late).save(stale)
    async with sessions() as session:
        stored = await TicketStore(session).get(ticket.ticket_id, lock=False)
    assert stored.version == stale.version + 2


async def test_a_ledger_the_batch_did_not_find_is_made_by_one_insert_or_taken_from_whoever_made_it_first(stack,
                                                                                                        sessions):
    """A batch that locked an order's ledgers and found none makes the ledger on the first refund
    without looking again. If another transaction made it in between (a rebalance handing the
    partition over), the insert finds it taken: the ledger is then read under its lock, not made
    twice and not lost."""
    from services.finance.repository import LedgerRepository, PaidOrderRepository

    first = await refunding_ticket(sessions, stack)
    second = await refunding_ticket(sessions, stack)
    await start(sessions, stack, first.ticket_id)  # finance's copy of what the order paid, and its ledger
    async with sessions() as session, session.begin():  # the ledger as if it never was, for both orders
        for ticket in (first, second):
            row = await session.get(RefundLedgerRow, ticket.order_id)
            if row is not None:
                await session.delete(row)

    async with sessions() as session, session.begin():
        ledgers = LedgerRepository(session, PaidOrderRepository(session))
        await ledgers.read_batch([first.order_id])
        made = await ledgers.get(first.order_id)
        async with sessions() as other, other.begin():  # not yet committed: invisible to the rival below
            assert await other.get(RefundLedgerRow, first.order_id) is None
    assert made.order_id == first.order_id
    async with sessions() as session:
        assert await session.get(RefundLedgerRow, first.order_id) is not None

    async with sessions() as session, session.begin():
        ledgers = LedgerRepository(session, PaidOrderRepository(session))
        await ledgers.read_batch([second.order_id])  # finds none
        async with sessions() as rival, rival.begin():  # another transaction makes it first
            await LedgerRepository(rival, PaidOrderRepository(rival)).get(second.order_id)
        taken = await ledgers.get(second.order_id)
        taken.shipping_refunded_cents = 1
        await ledgers.save(taken)
        await ledgers.write()  # as the unit of work does before it commits
    async with sessions() as session:
        rows = (await session.execute(select(RefundLedgerRow).where(
            RefundLedgerRow.order_id == second.order_id))).scalars().all()
    assert [row.shipping_refunded_cents for row in rows] == [1]


async def test_an_order_payment_recorded_in_a_batch_starts_the_waiting_refund_in_the_same_transaction(stack,
                                                                                                     sessions):
    """Finance's copies of OrderPlaced are inserted together when the batch commits; a refund that
    waited for the copy starts in that same transaction, its ledger made from the copy not yet
    written."""
    from contracts import Money
    from contracts.orders import OrderLine, OrderPlaced
    from services.common.tables import PaidOrderRow

    ticket = await refunding_ticket(sessions, stack)
    async with sessions() as session, session.begin():  # finance had not consumed the order yet
        copy = await session.get(PaidOrderRow, ticket.order_id)
        ledger = await session.get(RefundLedgerRow, ticket.order_id)
        placed = OrderPlaced(
            order_id=copy.order_id, shop_id=copy.shop_id, buyer_id="buyer-it", placed_at=clock(),
            lines=[OrderLine(line_no=ln["line_no"], sku=ln["sku"], quantity=ln["quantity"],
                             unit_price=Money.cny(ln["unit_price_cents"]), paid=Money.cny(ln["paid_cents"]))
                   for ln in copy.lines], shipping_fee=Money.cny(copy.shipping_fee_cents))
        for row in (copy, ledger):
            if row is not None:
                await session.delete(row)
    deps = finance.Deps(stack.with_changes(policy=AUTO_FINANCE), clock)
    async with SqlFinanceUnitOfWork(sessions, "finance") as uow:
        await uow.prepare({ticket.order_id})
        await finance.start_refund(ticket.ticket_id, uow, deps, None)
        assert [e for e in uow.published if e.type == "ExecuteRefund"] == []  # waits for the payment
        await finance.on_order_placed(new_envelope(placed, key=ticket.order_id, producer="order-system"), uow, deps)
        async with sessions() as other:  # the copy is not written before the commit
            assert await other.get(PaidOrderRow, ticket.order_id) is None
        await uow.commit()
        (started,) = [e for e in uow.published if e.type == "ExecuteRefund"]
    async with sessions() as session:
        assert await session.get(PaidOrderRow, ticket.order_id) is not None
        refund = (await session.execute(select(RefundRow).where(RefundRow.ticket_id == ticket.ticket_id))).scalar_one()
        ledger = await session.get(RefundLedgerRow, ticket.order_id)
    assert refund.refund_id == started.payload.refund_id
    assert ledger.lines["1"]["reserved_cents"] == refund.goods_cents
