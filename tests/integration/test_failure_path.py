"""The failure path on the real Kafka and PostgreSQL: one test per case the failure-path issue
names (bad keys, oversize poison, outages, reused ids, foreign types and producers, unknown
references, a poisoned periodic item, finance's lock order, personal data in errors)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition
from sqlalchemy import select, text, update

from contracts import Money, encode, new_envelope
from contracts import aftersales as c
from contracts import decisions as d
from contracts import warehouse as w
from contracts.admin import ReplayDeadLetter
from contracts.ops import OpsAlert, Severity
from contracts.payments import RefundSucceeded
from contracts.signing import signed
from contracts.topics import ADMIN_COMMANDS, DLQ, OPS_ALERTS, REFUND_RESULTS, TICKETS, WMS_EVENTS
from contracts.warehouse import InterceptResult
from services.common.bus import Bus
from services.common.quarantine import quarantined
from services.common.routes import Deps, Subscription, route
from services.common.runtime import Unprocessable, Worker, run_due
from services.common.tables import InterceptRow, OutboxRow, RefundRow, TicketRow
from services.common.tickets import TicketStore, view
from services.erp_sync.app import build_worker as build_erp_sync
from services.finance import service as finance
from services.finance.app import build_worker as build_finance
from services.finance.repository import SqlFinanceUnitOfWork
from services.intake.repository import SqlIntakeUnitOfWork
from services.scheduler.repository import SqlSchedulerUnitOfWork
from services.scheduler.service import ticket_deadlines
from services.warehouse import service as warehouse
from services.warehouse.app import build_worker as build_warehouse
from services.warehouse.repository import SqlWarehouseUnitOfWork

from .helpers import Marks, eventually, new_topic, open_ticket, outbox_count, plain_worker, read_topic
from .test_review_finance import decide, reload

pytestmark = pytest.mark.asyncio(loop_scope="session")


def alert(order_id: str, text: str = "probe") -> OpsAlert:
    return OpsAlert(kind="TEST", severity=Severity.INFO, message=text, order_id=order_id)


def recording(calls: list[str]) -> Any:
    async def handle(envelope: Any, uow: Any, deps: Any) -> None:
        calls.append(envelope.key)
        uow.publish(alert(envelope.key, f"seen {envelope.event_id}"), key=envelope.key)
    return handle


def record_on(topic: str, value: bytes, key: bytes | None = b"O-x", offset: int = 0) -> ConsumerRecord[Any, Any]:
    """A record as the consumer would hand it over (for checks that do not need consumption)."""
    return ConsumerRecord(topic=topic, partition=0, offset=offset, timestamp=0, timestamp_type=0, key=key,
                          value=value, checksum=None, serialized_key_size=len(key or b""),
                          serialized_value_size=len(value), headers=())


async def letters_from(stack: Any, topic: str, count: int, *, marks: Marks, **kw: Any) -> list[Any]:
    return await read_topic(stack, DLQ.name, lambda e: e.payload.source_topic == topic, count, since=marks, **kw)


async def test_bad_keys_are_dead_lettered_and_the_message_behind_them_is_applied(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-keys-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    app = plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, recording(calls))])]).build_app()
    await app.start()
    bad_keys = [b" ", "售后".encode(), b"k" * 80, b"\xff\xfe\x00", b"a/b"]
    try:
        async with Bus(stack) as bus:
            for key in bad_keys:
                await bus.send_raw(topic, b"{not json", key=key)
            good = f"O-{uuid.uuid4().hex[:8]}"
            await bus.send_raw(topic, encode(new_envelope(alert(good), key=good, producer="t")), key=good)
        letters = await letters_from(stack, topic, len(bad_keys), marks=marks)
        await eventually(lambda: _has(calls, good))
    finally:
        await app.stop()
    assert [e.payload.offset for e in letters] == list(range(len(bad_keys)))
    assert all(e.key == "invalid-key" and e.payload.reason_code == "MALFORMED_JSON" for e in letters)
    assert letters[1].payload.original_key == "售后"
    assert letters[3].payload.original_key_encoding == "base64"


async def _has(calls: list[str], key: str) -> bool:
    return key in calls


async def test_an_oversize_poison_message_is_cut_in_its_dead_letter_and_the_worker_goes_on(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-big-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    app = plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, recording(calls))])]).build_app()
    await app.start()
    poison = b'{"type": "OpsAlert", "note": "' + b"\x01" * 900_000 + b'"'  # JSON-escaped: 5.4 MB
    try:
        async with Bus(stack) as bus:
            await bus.send_raw(topic, poison, key="O-big")
            good = f"O-{uuid.uuid4().hex[:8]}"
            await bus.send_raw(topic, encode(new_envelope(alert(good), key=good, producer="t")), key=good)
        [letter] = await letters_from(stack, topic, 1, marks=marks)
        await eventually(lambda: _has(calls, good))
    finally:
        await app.stop()
    assert letter.payload.original_truncated
    assert letter.payload.original_size == len(poison)
    assert letter.payload.original_sha256 == hashlib.sha256(poison).hexdigest()
    assert len(encode(letter)) < 1_000_000


class PostgresProxy:
    """A TCP hop between a worker and the real PostgreSQL that a test can cut and restore: an
    outage of the database as that worker sees it, without disturbing any other test."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _committed(stack: Any, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(**stack.kafka_client())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topic, 0))
    return meta.offset if meta else -1


async def test_a_database_outage_pauses_the_worker_and_dead_letters_nothing(stack, sessions, marks):
    url = urlsplit(stack.database_url)
    proxy = PostgresProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.open()
    netloc = f"{url.username}:{url.password}@127.0.0.1:{proxy.port}"
    settings = stack.with_changes(database_url=urlunsplit(url._replace(netloc=netloc)), retry_backoff_seconds=0.05,
                                  retry_backoff_max_seconds=0.3, outage_alert_after_seconds=0.5,
                                  commit_every_messages=1)
    topic = await new_topic(stack, partitions=1)
    name = f"t-outage-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    worker = plain_worker(name, settings, [Subscription(topic, [route(OpsAlert, recording(calls))])])
    app = worker.build_app()
    await app.start()
    keys = [f"O-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    try:
        async with Bus(stack) as bus:
            await bus.send_raw(topic, encode(new_envelope(alert(keys[0]), key=keys[0], producer="t")), key=keys[0])
            await eventually(lambda: _has(calls, keys[0]))
            await proxy.cut()
            for key in keys[1:]:
                await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)
            await eventually(lambda: _retries(worker, 5))
            assert await _committed(stack, worker.group, topic) <= 1  # nothing past the waiting message
            outage = await read_topic(stack, OPS_ALERTS.name,
                                      lambda e: e.key == name and e.payload.kind == "INFRASTRUCTURE_OUTAGE", 1,
                                      since=marks)
            await proxy.open()
        await eventually(lambda: _count(sessions, name, len(keys)), timeout=30)
    finally:
        await app.stop()
    assert outage
    assert calls[-3:] == keys[1:]
    assert await letters_from(stack, topic, 1, timeout=2, marks=marks) == []


async def _retries(worker: Worker, n: int) -> bool:
    return worker.counts["infrastructure_retries"] >= n


async def _count(sessions: Any, name: str, n: int) -> bool:
    return await outbox_count(sessions, name) >= n


async def test_a_nul_byte_is_dead_lettered_at_once_and_no_sql_parameter_reaches_logs(stack, sessions, capsys, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-nul-{uuid.uuid4().hex[:6]}"

    async def stores_note(envelope: Any, uow: Any, deps: Any) -> None:
        await uow.session.execute(text("select cast(:note as text)"),
                                  {"note": f"buyer 13800001111 {envelope.payload.message}"})

    app = plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, stores_note)])]).build_app()
    await app.start()
    try:
        key = f"O-{uuid.uuid4().hex[:8]}"
        async with Bus(stack) as bus:
            await bus.send_raw(topic, encode(new_envelope(alert(key, "a\x00b"), key=key, producer="t")), key=key)
        [letter] = await letters_from(stack, topic, 1, marks=marks)
    finally:
        await app.stop()
    assert letter.payload.reason_code == "DATA_ERROR"
    assert letter.payload.attempts == 1
    assert "sqlstate=22021" in letter.payload.reason
    out = capsys.readouterr()
    assert "13800001111" not in letter.payload.reason + out.out + out.err


async def test_a_reused_event_id_with_new_content_is_dead_lettered_and_raised(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-reuse-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    app = plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, recording(calls))])]).build_app()
    await app.start()
    key = f"O-{uuid.uuid4().hex[:8]}"
    first = new_envelope(alert(key, "refund 100"), key=key, producer="t")
    forged = first.model_copy(update={"payload": alert(key, "refund 100000")})
    try:
        async with Bus(stack) as bus:
            for value in (encode(first), encode(first), encode(forged)):
                await bus.send_raw(topic, value, key=key)
        [letter] = await letters_from(stack, topic, 1, marks=marks)
        raised = await read_topic(stack, OPS_ALERTS.name,
                                  lambda e: e.key == key and e.payload.kind == "EVENT_ID_REUSED", 1, since=marks)
    finally:
        await app.stop()
    assert letter.payload.reason_code == "EVENT_ID_REUSED"
    assert letter.payload.offset == 2
    assert calls == [key]
    assert raised


async def test_foreign_types_and_producers_on_a_catalogued_topic_are_dead_lettered(stack, sessions, marks):
    name = f"t-boundary-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    sub = Subscription(WMS_EVENTS.name, [route(InterceptResult, recording(calls))])
    worker = plain_worker(name, stack, [sub])
    key = f"O-{uuid.uuid4().hex[:8]}"
    result = w.InterceptResult(ticket_id="T-x", order_id=key, outcome=w.InterceptOutcome.INTERCEPTED,
                               decided_at=datetime.now(UTC))
    foreign = new_envelope(alert(key), key=key, producer="wms")
    impostor = new_envelope(result, key=key, producer="buyer-frontend")
    async with AsyncExitStack() as resources:
        await worker.open(resources)
        await worker.handle(record_on(WMS_EVENTS.name, encode(foreign), key.encode(), 0), sub)
        await worker.handle(record_on(WMS_EVENTS.name, encode(impostor), key.encode(), 1), sub)
    letters = await read_topic(stack, DLQ.name, lambda e: e.payload.consumer_group == worker.group, 2, since=marks)
    assert [e.payload.reason_code for e in letters] == ["FOREIGN_TYPE", "PRODUCER_NOT_ALLOWED"]
    assert calls == []


async def test_a_transition_of_an_unknown_ticket_has_no_side_effect(stack, sessions, marks):
    settings = stack.with_changes(shop_policies='{"shop-erp-it": {"has_erp": true}}')
    real = await open_ticket(sessions, stack, type_="EXCHANGE", shop="shop-erp-it")
    ghost = view(real).model_copy(update={"ticket_id": f"T-ghost-{uuid.uuid4().hex[:6]}"})
    for build, status in ((build_warehouse, c.TicketStatus.AWAITING_RECEIPT),
                          (build_erp_sync, c.TicketStatus.AWAITING_RETURN)):
        worker = build(settings)
        worker.group = f"{worker.group}-{uuid.uuid4().hex[:6]}"  # its own group: no clash with e2e
        worker.name = f"{worker.name}-it-{uuid.uuid4().hex[:6]}"
        event = c.TicketStatusChanged(ticket=ghost, from_status=c.TicketStatus.PENDING_REVIEW, to_status=status,
                                      actor=c.Actor(role=c.Role.OPS, id="ops-1"), reason="")
        async with AsyncExitStack() as resources:
            await worker.open(resources)
            sub = worker.subscriptions[0]
            await worker.handle(record_on(TICKETS.name, encode(new_envelope(event, key=real.order_id,
                                                                            producer="review"))), sub)
        letters = await read_topic(stack, DLQ.name, lambda e, g=worker.group: e.payload.consumer_group == g, 1,
                                   since=marks)
        assert letters[0].payload.reason_code == "UNKNOWN_TICKET"
        assert await outbox_count(sessions, worker.name) == 0


async def test_an_intercept_result_before_the_warehouse_saw_the_ticket_is_recorded(stack, sessions):
    ticket = await open_ticket(sessions, stack, state="PAID")
    result = w.InterceptResult(ticket_id=ticket.ticket_id, order_id=ticket.order_id,
                               outcome=w.InterceptOutcome.INTERCEPTED, decided_at=datetime.now(UTC))
    async with SqlWarehouseUnitOfWork(sessions, "warehouse") as uow:
        await warehouse.on_intercept_result(new_envelope(result, key=ticket.order_id, producer="wms"), uow,
                                            warehouse.Deps(stack, lambda: datetime.now(UTC)))
        await uow.commit()
    async with sessions() as session:
        row = await session.get(InterceptRow, ticket.ticket_id)
    assert row is not None
    assert row.outcome == "INTERCEPTED"


async def test_a_poisoned_deadline_is_quarantined_and_the_others_fire(stack, sessions):
    shop = f"shop-deadline-{uuid.uuid4().hex[:6]}"  # the scheduler below serves only this test's tickets
    good, bad = await open_ticket(sessions, stack, shop=shop), await open_ticket(sessions, stack, shop=shop)
    past = datetime.now(UTC) - timedelta(hours=100)
    async with sessions() as session, session.begin():
        await session.execute(update(TicketRow).where(TicketRow.ticket_id.in_([good.ticket_id, bad.ticket_id]))
                              .values(deadline_at=past, applied_at=past))
        await session.execute(update(TicketRow).where(TicketRow.ticket_id == bad.ticket_id)
                              .values(lines=[{"garbage": True}]))
    name = f"scheduler-it-{uuid.uuid4().hex[:6]}"
    job = ticket_deadlines(Deps(stack.with_changes(scheduler_shops=[shop])))
    try:
        await eventually(lambda: _deadline_moved(sessions, good.ticket_id, past, name, job), timeout=60)
        async with sessions() as session:
            parked = [q for q in await quarantined(session) if q.worker == name]
            raised = (await session.execute(select(OutboxRow.type).where(
                OutboxRow.producer == name, OutboxRow.key == bad.order_id))).scalars().all()
        assert [q.item_id for q in parked] == [bad.ticket_id]
        assert raised == ["OpsAlert"]
        # the next tick leaves it alone: still one alert
        await run_due(partial(SqlSchedulerUnitOfWork, sessions, name), job)
        assert await outbox_count(sessions, name) >= 1
        async with sessions() as session:
            again = (await session.execute(select(OutboxRow.type).where(
                OutboxRow.producer == name, OutboxRow.key == bad.order_id))).scalars().all()
        assert again == ["OpsAlert"]
    finally:
        async with sessions() as session, session.begin():  # the corrupt row must not haunt other runs
            await session.execute(update(TicketRow).where(TicketRow.ticket_id == bad.ticket_id)
                                  .values(deadline_at=None))


async def _deadline_moved(sessions: Any, ticket_id: str, past: datetime, worker: str, job: Any) -> bool:
    await run_due(partial(SqlSchedulerUnitOfWork, sessions, worker), job)
    async with sessions() as session:
        row = await session.get(TicketRow, ticket_id)
    return row is not None and (row.deadline_at is None or row.deadline_at > past)


async def refund_started(stack: Any, sessions: Any) -> tuple[Any, RefundRow, Any]:
    """A ticket approved by ops and finance whose refund finance started (ExecuteRefund staged)."""
    ticket = await open_ticket(sessions, stack)
    await decide(sessions, stack, d.ApproveTicket, ticket, "ops", "ops-1")
    await decide(sessions, stack, d.ApproveRefund, ticket, "finance", "fin-1")
    deps = finance.Deps(stack, lambda: datetime.now(UTC))
    async with SqlFinanceUnitOfWork(sessions, "finance") as uow:
        await finance.start_refund(ticket.ticket_id, uow, deps, None)
        await uow.commit()
    async with sessions() as session:
        refund = (await session.execute(select(RefundRow).where(RefundRow.ticket_id == ticket.ticket_id))).scalar_one()
    return ticket, refund, deps


async def test_finance_takes_the_ticket_lock_before_the_refund_lock(stack, sessions):
    """A transaction holding the ticket and then wanting the refund (review, a resend) and a
    channel answer run together: with one lock order they serialize instead of deadlocking."""
    ticket, refund, deps = await refund_started(stack, sessions)
    key_id = next(iter(stack.payment_keys))
    answer = signed(RefundSucceeded(refund_id=refund.refund_id, ticket_id=ticket.ticket_id, order_id=ticket.order_id,
                                    amount=Money.cny(refund.amount_cents), channel_ref="PAY-1",
                                    settled_at=datetime.now(UTC)), key_id, stack.payment_keys[key_id])

    async def channel_answer() -> None:
        async with SqlFinanceUnitOfWork(sessions, "finance") as uow:
            await finance.on_refund_succeeded(new_envelope(answer, key=ticket.order_id, producer="payment-channel"),
                                              uow, deps)
            await uow.commit()

    async with sessions() as holder, holder.begin():
        await holder.execute(text("set local lock_timeout = '5s'"))
        await TicketStore(holder).get(ticket.ticket_id)  # the ticket, locked
        answering = asyncio.create_task(channel_answer())
        await eventually(lambda: _someone_waits_on_a_lock(sessions))
        await holder.execute(select(RefundRow).where(RefundRow.refund_id == refund.refund_id).with_for_update())
    await asyncio.wait_for(answering, 10)
    async with sessions() as session:
        assert (await TicketStore(session).get(ticket.ticket_id, lock=False)).status.value == "COMPLETED"


async def _someone_waits_on_a_lock(sessions: Any) -> bool:
    async with sessions() as session:
        return bool((await session.execute(text(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
            "and datname = current_database()"))).scalar_one())


async def test_a_faulty_parked_request_is_dead_lettered_without_losing_its_order_fact(stack, sessions):
    """The request (a NUL byte in its description) outruns its order and is parked; when the
    order's facts land, replaying it fails in the database. The facts must stand regardless."""
    from contracts import orders as o
    from services.common.tables import OrderRow
    from services.intake import service as intake

    oid = f"O-nul-{uuid.uuid4().hex[:8]}"
    deps = intake.Deps(stack, lambda: datetime.now(UTC))
    placed_at = datetime.now(UTC) - timedelta(hours=3)
    request = c.RequestAfterSales(request_id=uuid.uuid4(), order_id=oid, buyer_id="buyer-it",
                                  type=c.AfterSalesType.REFUND_ONLY, lines=[c.RequestedLine(line_no=1, quantity=1)],
                                  reason_code="NO_LONGER_WANTED", description="see \x00 attached")
    facts = [o.OrderPlaced(order_id=oid, shop_id="shop-it", buyer_id="buyer-it", placed_at=placed_at,
                           lines=[o.OrderLine(line_no=1, sku="SKU-IT", quantity=1, unit_price=Money.cny(1000),
                                              paid=Money.cny(900))], shipping_fee=Money.cny(0)),
             o.OrderPaid(order_id=oid, paid_at=placed_at + timedelta(minutes=1)),
             o.OrderShipped(order_id=oid, shipped_at=placed_at + timedelta(hours=1))]
    async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
        assert await intake.request_after_sales(new_envelope(request, key=oid, producer="buyer-frontend"),
                                                uow, deps) == "parked"
        await uow.commit()
    published: list[str] = []
    for fact in facts:
        async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
            await intake.apply_order_event(new_envelope(fact, key=oid, producer="order-system"), uow, deps)
            await uow.commit()
            published += [e.type for e in uow.published]
    async with sessions() as session:
        order = await session.get(OrderRow, oid)
    assert order is not None
    assert order.state == "SHIPPED"
    assert published.count("DeadLetter") == 1
    assert "TicketOpened" not in published


async def test_a_refund_request_stuck_in_the_outbox_is_not_counted_as_an_attempt(stack, sessions):
    """Kafka was down: the ExecuteRefund never left the outbox. Its resend deadline passing must
    not use up the attempts (a false REFUND_FAILED); once it has left, the schedule counts again."""
    from services.finance.service import resend_due_refunds

    ticket = await open_ticket(sessions, stack)
    await decide(sessions, stack, d.ApproveTicket, ticket, "ops", "ops-1")
    await decide(sessions, stack, d.ApproveRefund, ticket, "finance", "fin-1")
    name = f"finance-it-{uuid.uuid4().hex[:6]}"  # no relay runs for this producer: its rows stay unpublished
    deps = finance.Deps(stack.with_changes(refund_max_attempts=1), lambda: datetime.now(UTC))
    async with SqlFinanceUnitOfWork(sessions, name) as uow:
        await finance.start_refund(ticket.ticket_id, uow, deps, None)
        await uow.commit()
    async with sessions() as session, session.begin():
        await session.execute(update(RefundRow).where(RefundRow.ticket_id == ticket.ticket_id)
                              .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    job = resend_due_refunds(deps)
    await run_due(partial(SqlFinanceUnitOfWork, sessions, name), job)
    async with sessions() as session:
        refund = (await session.execute(select(RefundRow).where(RefundRow.ticket_id == ticket.ticket_id))).scalar_one()
    assert refund.status == "PENDING"
    assert refund.attempts == 1
    assert refund.next_attempt_at > datetime.now(UTC)

    async with sessions() as session, session.begin():  # the request reached Kafka, unanswered
        await session.execute(update(OutboxRow).where(OutboxRow.producer == name)
                              .values(published_at=datetime.now(UTC)))
        await session.execute(update(RefundRow).where(RefundRow.ticket_id == ticket.ticket_id)
                              .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    await run_due(partial(SqlFinanceUnitOfWork, sessions, name), job)
    async with sessions() as session:
        refund = (await session.execute(select(RefundRow).where(RefundRow.ticket_id == ticket.ticket_id))).scalar_one()
    assert refund.status == "FAILED"


async def test_two_replicas_of_a_periodic_job_handle_a_due_item_once(stack, sessions):
    from services.finance.service import resend_due_refunds

    ticket = await open_ticket(sessions, stack)
    await decide(sessions, stack, d.ApproveTicket, ticket, "ops", "ops-1")
    await decide(sessions, stack, d.ApproveRefund, ticket, "finance", "fin-1")
    name = f"finance-it-{uuid.uuid4().hex[:6]}"
    deps = finance.Deps(stack.with_changes(refund_max_attempts=5), lambda: datetime.now(UTC))
    async with SqlFinanceUnitOfWork(sessions, name) as uow:
        await finance.start_refund(ticket.ticket_id, uow, deps, None)
        await uow.commit()
    async with sessions() as session, session.begin():  # sent and unanswered, now due again
        await session.execute(update(OutboxRow).where(OutboxRow.producer == name)
                              .values(published_at=datetime.now(UTC)))
        await session.execute(update(RefundRow).where(RefundRow.ticket_id == ticket.ticket_id)
                              .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    job = resend_due_refunds(deps)
    units = partial(SqlFinanceUnitOfWork, sessions, name)
    await asyncio.gather(run_due(units, job), run_due(units, job))
    async with sessions() as session:
        refund = (await session.execute(select(RefundRow).where(RefundRow.ticket_id == ticket.ticket_id))).scalar_one()
        sends = (await session.execute(select(OutboxRow.id).where(
            OutboxRow.producer == name, OutboxRow.type == "ExecuteRefund"))).all()
    assert refund.attempts == 2
    assert len(sends) == 2


async def test_shutdown_does_not_wait_for_a_handler_waiting_out_an_outage(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-stop-{uuid.uuid4().hex[:6]}"

    async def database_down(envelope: Any, uow: Any, deps: Any) -> None:
        raise ConnectionRefusedError("database down")

    settings = stack.with_changes(retry_backoff_max_seconds=0.2, shutdown_grace_seconds=1.0)
    worker = plain_worker(name, settings, [Subscription(topic, [route(OpsAlert, database_down)])])
    app = worker.build_app()
    await app.start()
    key = f"O-{uuid.uuid4().hex[:8]}"
    async with Bus(stack) as bus:
        await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)
    await eventually(lambda: _retries(worker, 3))
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(app.stop(), 20)
    assert asyncio.get_running_loop().time() - started < 15
    assert await _committed(stack, worker.group, topic) <= 0  # the waiting message stays uncommitted
    assert await letters_from(stack, topic, 1, timeout=2, marks=marks) == []


async def test_a_reused_event_id_within_one_batch_is_not_dropped_silently(stack, sessions, marks):
    topic = await new_topic(stack, partitions=1)
    name = f"t-reuse-batch-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    sub = Subscription(topic, [route(OpsAlert, recording(calls))])
    worker = plain_worker(name, stack, [sub])
    key = f"O-{uuid.uuid4().hex[:8]}"
    first = new_envelope(alert(key, "refund 100"), key=key, producer="t")
    forged = first.model_copy(update={"payload": alert(key, "refund 100000")})
    async with AsyncExitStack() as resources:
        await worker.open(resources)
        await worker.handle_batch((record_on(topic, encode(first), key.encode(), 0),
                                   record_on(topic, encode(forged), key.encode(), 1)), {topic: sub})
    [letter] = await letters_from(stack, topic, 1, marks=marks)
    assert letter.payload.reason_code == "EVENT_ID_REUSED"
    assert letter.payload.offset == 1
    assert calls == [key]


async def test_a_forged_refund_result_is_dead_lettered_as_signature_invalid_and_raised(stack, sessions, marks):
    """Anyone able to write payments.refund-results as "payment-channel" could complete a refund by
    naming its id; without the channel's signature finance refuses it, and ops hear of it at once."""
    ticket, refund, _ = await refund_started(stack, sessions)
    worker = build_finance(stack)
    worker.group = f"{worker.group}-{uuid.uuid4().hex[:6]}"  # its own group: no clash with e2e
    worker.name = f"{worker.name}-it-{uuid.uuid4().hex[:6]}"
    sub = next(s for s in worker.subscriptions if s.topic_name == REFUND_RESULTS.name)
    forged = RefundSucceeded(refund_id=refund.refund_id, ticket_id=ticket.ticket_id, order_id=ticket.order_id,
                             amount=Money.cny(refund.amount_cents), channel_ref="PAY-FORGED",
                             settled_at=datetime.now(UTC))
    async with AsyncExitStack() as resources:
        await worker.open(resources)
        for offset, payload in enumerate([forged, signed(forged, "mallory-key", "mallory's guess")]):
            envelope = new_envelope(payload, key=ticket.order_id, producer="payment-channel")
            await worker.handle(record_on(REFUND_RESULTS.name, encode(envelope), ticket.order_id.encode(), offset),
                                sub)
    letters = await read_topic(stack, DLQ.name, lambda e: e.payload.consumer_group == worker.group, 2, since=marks)
    raised = await read_topic(stack, OPS_ALERTS.name, lambda e: e.key == ticket.order_id
                              and e.payload.kind == "SIGNATURE_INVALID", 2, since=marks)
    assert [e.payload.reason_code for e in letters] == ["SIGNATURE_INVALID", "SIGNATURE_INVALID"]
    assert {e.payload.severity for e in raised} == {Severity.CRITICAL}
    assert (await reload(sessions, ticket.ticket_id)).status.value == "REFUNDING"


async def test_a_dead_letter_replayed_is_read_back_from_its_source_and_handled_again(stack, sessions, marks):
    """The replay names the message (topic, partition, offset, hash); the group that gave up reads
    it back itself. Another group ignores the command; a wrong hash is refused, nothing handled."""
    topic = await new_topic(stack, partitions=1)
    name = f"t-replay-{uuid.uuid4().hex[:6]}"
    handled: list[str] = []

    async def flaky(envelope: Any, uow: Any, deps: Any) -> None:
        if not handled:
            handled.append("refused")
            raise Unprocessable("the ticket is not there yet", code="UNKNOWN_TICKET")
        handled.append("applied")

    worker = plain_worker(name, stack, [Subscription(topic, [route(OpsAlert, flaky)])], replayable=True)
    admin = next(s for s in worker.subscriptions if s.topic_name == ADMIN_COMMANDS.name)
    key = f"O-{uuid.uuid4().hex[:8]}"
    value = encode(new_envelope(alert(key), key=key, producer="t"))
    async with Bus(stack) as bus:
        partition, offset = await bus.send_raw(topic, value, key=key)
    async with AsyncExitStack() as resources:
        await worker.open(resources)
        await worker.handle(record_on(topic, value, key.encode(), offset), worker.subscriptions[0])
        [letter] = await letters_from(stack, topic, 1, marks=marks)

        def replay(**changes: Any) -> Any:
            cmd = ReplayDeadLetter(dead_letter_id=letter.event_id, source_topic=topic, partition=partition,
                                   offset=letter.payload.offset, consumer_group=letter.payload.consumer_group,
                                   original_sha256=letter.payload.original_sha256, requested_by="admin-1")
            return record_on(ADMIN_COMMANDS.name, encode(new_envelope(
                cmd.model_copy(update=changes), key=f"dlq.{letter.event_id}", producer="back-office")), b"dlq", 0)

        await worker.handle(replay(consumer_group="aftersales.someone-else"), admin)
        assert handled == ["refused"]
        await worker.handle(replay(original_sha256="f" * 64), admin)
        assert handled == ["refused"]
        await worker.handle(replay(), admin)
    assert handled == ["refused", "applied"]
    refusals = await read_topic(stack, DLQ.name, lambda e: e.payload.source_topic == ADMIN_COMMANDS.name
                                and e.payload.consumer_group == worker.group, 1, since=marks)
    assert refusals[0].payload.reason_code == "NOT_REPLAYABLE"
