"""Intake on the real stack: projection ordering and duplicates, concurrent requests for the same
units, refusals reaching the rejection topic, hostile inputs, and the reasons catalogue cache."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from contracts import Money, encode, new_envelope
from contracts import aftersales as c
from contracts import orders as o
from contracts.topics import DLQ, REJECTIONS, REQUESTS
from services.common.bus import Bus
from services.common.failures import Failure, classify
from services.common.runtime import run_due
from services.common.settings import Settings
from services.common.tables import OutboxRow, ParkedOrderEvent, TicketRow
from services.domain import errors
from services.domain.model import AfterSalesType
from services.intake import service
from services.intake.app import build_worker
from services.intake.reasons import ReasonCatalogue
from services.intake.repository import OrderRepository, SqlIntakeUnitOfWork
from services.scheduler.repository import SqlSchedulerUnitOfWork
from services.scheduler.service import parked_events

from .helpers import Statements, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")
NOW = datetime.now(UTC)


def placed(oid: str, qty: int = 3, paid: int = 10_000) -> o.OrderPlaced:
    return o.OrderPlaced(order_id=oid, shop_id="shop-it", buyer_id="buyer-it", placed_at=NOW - timedelta(hours=1),
                         lines=[o.OrderLine(line_no=1, sku="SKU-IT", quantity=qty, unit_price=Money.cny(3500),
                                            paid=Money.cny(paid))], shipping_fee=Money.cny(600))


def env(payload: Any, oid: str) -> Any:
    return new_envelope(payload, key=oid, producer="test")


async def drain_parked(sessions: Any, settings: Settings) -> int:
    """Scheduler ticks until no parked event is past its wait (other tests leave some behind)."""
    total = 0
    job = parked_events(service.Deps(settings))
    while True:
        expired = await run_due(partial(SqlSchedulerUnitOfWork, sessions, "scheduler-test"), job)
        total += expired
        if not expired:
            return total


def _settings() -> Settings:
    return Settings()


async def apply(sessions: Any, envelope: Any) -> None:
    async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
        await service.apply_order_event(envelope, uow, service.Deps(_settings(), clock=lambda: datetime.now(UTC)))
        await uow.commit()


@pytest.fixture(scope="module")
def deps(stack):  # type: ignore[no-untyped-def]
    return service.Deps(stack, clock=lambda: datetime.now(UTC))


async def test_out_of_order_events_are_parked_then_applied_and_duplicates_ignored(sessions):
    oid = f"O-{uuid.uuid4().hex[:8]}"
    completed = env(o.OrderCompleted(order_id=oid, completed_at=NOW), oid)
    await apply(sessions, completed)
    await apply(sessions, env(o.OrderShipped(order_id=oid, shipped_at=NOW - timedelta(minutes=5)), oid))
    await apply(sessions, env(placed(oid), oid))
    async with sessions() as session:
        order = await OrderRepository(session).get(oid, lock=False)
        assert order is not None
        assert order.state.value == "PENDING_PAYMENT"
    await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW - timedelta(minutes=50)), oid))
    await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))  # duplicate fact
    await apply(sessions, env(placed(oid), oid))  # duplicate OrderPlaced
    async with sessions() as session:
        order = await OrderRepository(session).get(oid, lock=False)
        parked = (await session.execute(select(func.count()).select_from(ParkedOrderEvent)
                                        .where(ParkedOrderEvent.order_id == oid))).scalar_one()
    assert order.state.value == "COMPLETED"
    assert parked == 0
    assert order.paid_at == NOW - timedelta(minutes=50)


async def test_an_event_that_never_becomes_valid_goes_to_the_dlq_after_the_wait(stack, sessions):
    oid = f"O-{uuid.uuid4().hex[:8]}"
    await apply(sessions, env(o.OrderShipped(order_id=oid, shipped_at=NOW), oid))
    assert await drain_parked(sessions, stack.with_changes(parked_event_wait_seconds=0)) >= 1
    async with sessions() as session:
        row = (await session.execute(select(OutboxRow).where(OutboxRow.producer == "scheduler-test",
                                                              OutboxRow.key == oid))).scalar_one()
    letter = json.loads(row.value)
    assert row.topic == DLQ.name
    assert "order not known yet" in letter["payload"]["reason"]


async def request(sessions: Any, deps: Any, oid: str, qty: int, request_id: uuid.UUID | None = None) -> Any:
    envelope = env(c.RequestAfterSales(request_id=request_id or uuid.uuid4(), order_id=oid, buyer_id="buyer-it",
                                       type=c.AfterSalesType.REFUND_ONLY,
                                       lines=[c.RequestedLine(line_no=1, quantity=qty)],
                                       reason_code="NO_LONGER_WANTED"), oid)
    async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
        await service.request_after_sales(envelope, uow, deps)
        await uow.commit()


async def tickets_of(sessions: Any, oid: str) -> list[TicketRow]:
    async with sessions() as session:
        return list((await session.execute(select(TicketRow).where(TicketRow.order_id == oid))).scalars().all())


async def test_concurrent_requests_for_the_same_units_open_exactly_one_ticket(sessions, deps):
    oid = f"O-{uuid.uuid4().hex[:8]}"
    await apply(sessions, env(placed(oid), oid))
    await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))
    results = await asyncio.gather(*(request(sessions, deps, oid, 2) for _ in range(4)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, errors.UnitsAlreadyInActiveTicket)]
    assert len(refused) == 3
    assert results.count(None) == 1
    assert len(await tickets_of(sessions, oid)) == 1


async def test_concurrent_partial_requests_never_share_a_unit(sessions, deps):
    oid = f"O-{uuid.uuid4().hex[:8]}"
    await apply(sessions, env(placed(oid, qty=3, paid=10_000), oid))
    await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))
    await asyncio.gather(*(request(sessions, deps, oid, 1) for _ in range(5)), return_exceptions=True)
    tickets = await tickets_of(sessions, oid)
    positions = [p for t in tickets for ln in t.lines for p in ln["positions"]]
    assert sorted(positions) == [0, 1, 2]
    assert sum(t.refund_total_cents for t in tickets) == 10_000


async def test_the_same_request_id_twice_opens_one_ticket(sessions, deps):
    oid = f"O-{uuid.uuid4().hex[:8]}"
    await apply(sessions, env(placed(oid), oid))
    await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))
    rid = uuid.uuid4()
    results = await asyncio.gather(request(sessions, deps, oid, 1, rid), request(sessions, deps, oid, 1, rid),
                                   return_exceptions=True)
    assert None in results
    await request(sessions, deps, oid, 1, rid)  # a later retry (as the runtime would do) is a no-op
    assert len(await tickets_of(sessions, oid)) == 1


async def test_a_batch_finds_repeated_requests_in_the_tickets_it_read_with_its_orders(sessions, deps):
    """``prepare`` locks the batch's orders and their tickets: requests then read no ticket, by
    request id or by order, and a request repeated in the same batch opens nothing more."""
    first, second = f"O-{uuid.uuid4().hex[:8]}", f"O-{uuid.uuid4().hex[:8]}"
    for oid in (first, second):
        await apply(sessions, env(placed(oid), oid))
        await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))
    await request(sessions, deps, first, 1)  # a ticket from an earlier batch: its units are claimed

    def asked(oid: str, rid: uuid.UUID) -> Any:
        return env(c.RequestAfterSales(request_id=rid, order_id=oid, buyer_id="buyer-it",
                                       type=c.AfterSalesType.REFUND_ONLY,
                                       lines=[c.RequestedLine(line_no=1, quantity=1)],
                                       reason_code="NO_LONGER_WANTED"), oid)
    again, other = uuid.uuid4(), uuid.uuid4()
    async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
        await uow.prepare({first, second})
        with Statements(sessions) as statements:
            outcomes = [await service.request_after_sales(asked(oid, rid), uow, deps)
                        for oid, rid in ((first, again), (second, other), (first, again))]
        await uow.commit()
    assert outcomes == ["opened", "opened", "duplicate"]
    assert [sql for sql in statements.sent if "FROM tickets" in sql] == []
    assert [len(await tickets_of(sessions, oid)) for oid in (first, second)] == [2, 1]


async def test_a_request_id_reused_on_another_order_opens_nothing_there(sessions, deps):
    """The ticket id comes from the request id: the insert's unique key refuses the second
    order's ticket, a conflict the runtime retries and then dead-letters with its reason."""
    first, second = f"O-{uuid.uuid4().hex[:8]}", f"O-{uuid.uuid4().hex[:8]}"
    for oid in (first, second):
        await apply(sessions, env(placed(oid), oid))
        await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))
    rid = uuid.uuid4()
    await request(sessions, deps, first, 1, rid)
    with pytest.raises(IntegrityError) as refused:
        await request(sessions, deps, second, 1, rid)
    assert classify(refused.value) is Failure.CONFLICT
    assert [len(await tickets_of(sessions, oid)) for oid in (first, second)] == [1, 0]


async def test_a_hidden_reason_is_refused_even_when_the_cache_is_stale(stack, sessions, deps):
    redis = Redis.from_url(stack.redis_url)
    catalogue = ReasonCatalogue(sessions, redis)
    code = f"TEMP_{uuid.uuid4().hex[:6].upper()}"
    try:
        await catalogue.add(AfterSalesType.REFUND_ONLY, code, "Temporary reason")
        listing = await catalogue.visible(AfterSalesType.REFUND_ONLY)
        assert code in [r["code"] for r in listing]
        await catalogue.hide(AfterSalesType.REFUND_ONLY, code)
        assert code not in [r["code"] for r in await catalogue.visible(AfterSalesType.REFUND_ONLY)]
        await redis.set("aftersales:reasons:REFUND_ONLY", json.dumps(listing))  # a stale cache
        oid = f"O-{uuid.uuid4().hex[:8]}"
        await apply(sessions, env(placed(oid), oid))
        await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))
        envelope = env(c.RequestAfterSales(request_id=uuid.uuid4(), order_id=oid, buyer_id="buyer-it",
                                           type=c.AfterSalesType.REFUND_ONLY,
                                           lines=[c.RequestedLine(line_no=1, quantity=1)], reason_code=code), oid)
        async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
            with pytest.raises(errors.ReasonNotAvailable):
                await service.request_after_sales(envelope, uow, deps)
    finally:
        await catalogue.delete(AfterSalesType.REFUND_ONLY, code)
        await redis.aclose()


async def test_reasons_can_be_reordered_and_edited(stack, sessions):
    redis = Redis.from_url(stack.redis_url)
    catalogue = ReasonCatalogue(sessions, redis)
    original = await catalogue.all(AfterSalesType.REPAIR)
    before = [r.code for r in original]
    try:
        await catalogue.visible(AfterSalesType.REPAIR)  # warm the cache
        await catalogue.reorder(AfterSalesType.REPAIR, list(reversed(before)))
        assert [r["code"] for r in await catalogue.visible(AfterSalesType.REPAIR)] == list(reversed(before))
        await catalogue.edit(AfterSalesType.REPAIR, before[0], "Renamed")
        assert {r.code: r.label for r in await catalogue.all(AfterSalesType.REPAIR)}[before[0]] == "Renamed"
    finally:
        await catalogue.reorder(AfterSalesType.REPAIR, before)
        await catalogue.edit(AfterSalesType.REPAIR, before[0], original[0].label)
        await redis.aclose()


def request_doc(oid: str, **payload: Any) -> bytes:
    base = {"request_id": str(uuid.uuid4()), "order_id": oid, "buyer_id": "buyer-it", "type": "REFUND_ONLY",
            "lines": [{"line_no": 1, "quantity": 1}], "reason_code": "NO_LONGER_WANTED"}
    base.update(payload)
    doc = orjson.loads(encode(env(c.WithdrawTicket(ticket_id="x", order_id=oid, buyer_id="b"), oid)))
    doc.update(type="RequestAfterSales", payload=base, producer="buyer-frontend")
    return orjson.dumps(doc)


HOSTILE = {
    "negative quantity": {"lines": [{"line_no": 1, "quantity": -2}]},
    "huge quantity": {"lines": [{"line_no": 1, "quantity": 10**12}]},
    "float quantity": {"lines": [{"line_no": 1, "quantity": 1.5}]},
    "string quantity": {"lines": [{"line_no": 1, "quantity": "1"}]},
    "lines of the wrong type": {"lines": "all"},
    "megabyte description": {"description": "x" * 1_000_000},
    "missing buyer": {"buyer_id": None},
    "unknown type": {"type": "STEAL"},
}


async def test_hostile_requests_end_as_rejections_or_dead_letters_never_a_crash(stack, marks):
    worker = build_worker(stack)
    app = worker.build_app()
    await app.start()
    oid = f"O-{uuid.uuid4().hex[:8]}"
    try:
        async with Bus(stack) as bus:
            await bus.publish(placed(oid), key=oid, topic="orders.events")
            await bus.publish(o.OrderPaid(order_id=oid, paid_at=NOW), key=oid, topic="orders.events")
            for values in HOSTILE.values():
                await bus.send_raw(REQUESTS.name, request_doc(oid, **values), key=oid)
            await bus.send_raw(REQUESTS.name, request_doc(oid, lines=[{"line_no": 7, "quantity": 1}]), key=oid)
            await bus.send_raw(REQUESTS.name, request_doc(oid, lines=[{"line_no": 1, "quantity": 4}]), key=oid)
            await bus.send_raw(REQUESTS.name, request_doc(oid), key=oid)  # a good one, after all that
        letters = await read_topic(stack, DLQ.name, lambda e: e.payload.original_key == oid, len(HOSTILE), since=marks)
        assert len(letters) == len(HOSTILE)
        assert {e.payload.reason_code for e in letters} <= {"SCHEMA_VIOLATION", "MALFORMED_JSON"}
        rejections = await read_topic(stack, REJECTIONS.name, lambda e: e.key == oid, 2, since=marks)
        assert sorted(e.payload.code for e in rejections) == ["INVALID_QUANTITY", "UNKNOWN_LINE"]
        opened = await read_topic(stack, "aftersales.tickets",
                                  lambda e: e.type == "TicketOpened" and e.key == oid, 1, since=marks)
        assert opened[0].payload.ticket.lines[0].quantity == 1
        assert worker.dead_lettered == len(HOSTILE)
    finally:
        await app.stop()


async def test_a_request_that_arrives_before_its_order_waits_and_is_then_applied(sessions, deps):
    oid = f"O-{uuid.uuid4().hex[:8]}"
    await request(sessions, deps, oid, 1)  # no order yet: parked, not refused
    await apply(sessions, env(placed(oid), oid))
    assert await tickets_of(sessions, oid) == []  # still unpaid: a refund may become possible
    await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))
    tickets = await tickets_of(sessions, oid)
    assert len(tickets) == 1
    assert tickets[0].type == "REFUND_ONLY"
    async with sessions() as session:
        parked = (await session.execute(select(func.count()).select_from(ParkedOrderEvent)
                                        .where(ParkedOrderEvent.order_id == oid))).scalar_one()
    assert parked == 0


async def test_a_waiting_request_that_turns_out_invalid_is_refused_without_undoing_the_order_fact(sessions, deps):
    oid = f"O-{uuid.uuid4().hex[:8]}"
    await request(sessions, deps, oid, 5)  # more units than the order will have
    await apply(sessions, env(placed(oid), oid))
    await apply(sessions, env(o.OrderPaid(order_id=oid, paid_at=NOW), oid))
    async with sessions() as session:
        order = await OrderRepository(session).get(oid, lock=False)
        rejected = (await session.execute(select(OutboxRow.value).where(
            OutboxRow.type == "RequestRejected", OutboxRow.key == oid))).scalars().all()
    assert order.state.value == "PAID"
    assert len(rejected) == 1
    assert b"INVALID_QUANTITY" in rejected[0]


async def test_a_request_waiting_in_vain_is_refused_after_the_wait(stack, sessions, deps):
    oid = f"O-{uuid.uuid4().hex[:8]}"
    await request(sessions, deps, oid, 1)
    await drain_parked(sessions, stack.with_changes(parked_request_wait_seconds=0))
    async with sessions() as session:
        row = (await session.execute(select(OutboxRow).where(OutboxRow.type == "RequestRejected",
                                                              OutboxRow.key == oid))).scalar_one()
    assert json.loads(row.value)["payload"]["code"] == "ORDER_UNKNOWN"
    assert row.topic == REJECTIONS.name


async def test_one_batch_of_out_of_order_facts_and_waiting_requests_ends_as_one_by_one(sessions, deps):
    """As the runtime applies a fetched batch: ``prepare`` locks the batch's orders and what is
    parked for them once, then every fact and request runs in the same transaction. The order
    ends as it does one message at a time: facts parked then drained, duplicates ignored, the
    valid waiting request opened, the invalid one refused in its savepoint without undoing the
    facts around it."""
    oid, early = f"O-{uuid.uuid4().hex[:8]}", f"O-{uuid.uuid4().hex[:8]}"
    await request(sessions, deps, early, 5)  # waits for its order from an earlier batch
    one_unit = env(c.RequestAfterSales(request_id=uuid.uuid4(), order_id=early, buyer_id="buyer-it",
                                       type=c.AfterSalesType.REFUND_ONLY,
                                       lines=[c.RequestedLine(line_no=1, quantity=1)],
                                       reason_code="NO_LONGER_WANTED"), early)
    batch = [env(o.OrderCompleted(order_id=oid, completed_at=NOW), oid),
             env(o.OrderShipped(order_id=oid, shipped_at=NOW - timedelta(minutes=5)), oid),
             env(placed(oid), oid), env(o.OrderPaid(order_id=oid, paid_at=NOW - timedelta(minutes=50)), oid),
             env(o.OrderPaid(order_id=oid, paid_at=NOW), oid), env(placed(oid), oid),
             env(placed(early), early), env(o.OrderPaid(order_id=early, paid_at=NOW), early)]
    async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
        await uow.prepare({oid, early})
        for envelope in batch:
            await service.apply_order_event(envelope, uow, deps)
        await service.request_after_sales(one_unit, uow, deps)
        await uow.commit()
    async with sessions() as session:
        order, other = (await OrderRepository(session).get(oid, lock=False),
                        await OrderRepository(session).get(early, lock=False))
        parked = (await session.execute(select(func.count()).select_from(ParkedOrderEvent)
                                        .where(ParkedOrderEvent.order_id.in_([oid, early])))).scalar_one()
        rejected = (await session.execute(select(OutboxRow.value).where(
            OutboxRow.type == "RequestRejected", OutboxRow.key == early))).scalars().all()
    assert (order.state.value, order.paid_at, parked) == ("COMPLETED", NOW - timedelta(minutes=50), 0)
    assert other.state.value == "PAID"
    assert [b"INVALID_QUANTITY" in r for r in rejected] == [True]
    assert [t.type for t in await tickets_of(sessions, early)] == ["REFUND_ONLY"]
