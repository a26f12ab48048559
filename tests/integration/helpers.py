"""Helpers for integration tests on the real broker and database: fresh topics, reading topics,
and a worker running in this process with the production runtime."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import event, func, select

from contracts import InvalidMessage, decode
from services.common.routes import Subscription
from services.common.runtime import Worker
from services.common.settings import Settings
from services.common.tables import OutboxRow
from services.common.uow import SqlUnitOfWork


def plain_worker(name: str, settings: Settings, subscriptions: list[Subscription[SqlUnitOfWork]],
                 **options: Any) -> Worker[SqlUnitOfWork]:
    """A worker with the production runtime and a unit of work without repositories (the test's
    handlers publish or touch the session themselves)."""
    return Worker(name, settings, subscriptions, unit_of_work=SqlUnitOfWork, **options)


async def new_topic(settings: Settings, partitions: int = 3) -> str:
    name = f"test.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(**settings.kafka_client())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


Marks = dict[str, dict[int, int]]  # topic -> partition -> the offset where this test begins


async def _partitions(settings: Settings, topics: tuple[str, ...]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**settings.kafka_client())
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


async def topic_marks(settings: Settings, topics: tuple[str, ...]) -> Marks:
    """The end offsets of shared topics before a test acts: its reads start there, not at 0."""
    partitions = await _partitions(settings, topics)
    consumer = AIOKafkaConsumer(**settings.kafka_client(), enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    marks: Marks = {}
    for tp, offset in ends.items():
        marks.setdefault(tp.topic, {})[tp.partition] = offset
    return marks


async def read_topic(settings: Settings, topic: str, predicate: Callable[[Any], bool], count: int, *,
                     since: Marks, timeout: float = 20.0, settle: float = 0.0) -> list[Any]:
    """Reads ``topic`` from the test's marks (a topic the test created itself: from its start)
    until ``count`` matching envelopes were seen (then waits ``settle`` seconds more, to catch
    copies that should not exist)."""
    partitions = await _partitions(settings, (topic,))
    consumer = AIOKafkaConsumer(**settings.kafka_client(),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    consumer.assign(partitions)
    for tp in partitions:
        if tp.partition in since.get(topic, {}):
            consumer.seek(tp, since[topic][tp.partition])
        else:
            await consumer.seek_to_beginning(tp)
    found: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    settle_until: float | None = None
    try:
        while loop.time() < (settle_until or deadline):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    try:
                        envelope = decode(record.value)
                    except InvalidMessage:
                        continue
                    if predicate(envelope):
                        found.append(envelope)
            if len(found) >= count and settle_until is None:
                settle_until = loop.time() + settle
                if not settle:
                    break
    finally:
        await consumer.stop()
    return found


async def outbox_count(sessions: Any, producer: str) -> int:
    async with sessions() as session:
        return (await session.execute(select(func.count()).select_from(OutboxRow)
                                      .where(OutboxRow.producer == producer))).scalar_one()


async def aftersales(*args: str) -> tuple[int, str, str]:
    """The ``aftersales`` command as an operator runs it (its own process, the stack's settings):
    exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "AFTERSALES_LOG_LEVEL": "WARNING"})
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), out.decode(), err.decode()


async def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def open_ticket(sessions: Any, settings: Settings, *, type_: str = "REFUND_ONLY", state: str = "SHIPPED",
                      qty: int = 3, paid: int = 10_000, take: int = 2, shop: str = "shop-it") -> Any:
    """An order projected to ``state`` (by intake, and its payment copied by finance, as each
    consumes the orders topic) and a ticket opened on it through intake's use case."""
    from datetime import UTC, datetime, timedelta

    from contracts import Money, new_envelope
    from contracts import aftersales as c
    from contracts import orders as o
    from services.common.tickets import TicketStore
    from services.finance import service as finance
    from services.finance.repository import SqlFinanceUnitOfWork
    from services.intake import service
    from services.intake.repository import SqlIntakeUnitOfWork

    oid = f"O-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    facts: list[Any] = [o.OrderPlaced(
        order_id=oid, shop_id=shop, buyer_id="buyer-it", placed_at=now - timedelta(days=1),
        lines=[o.OrderLine(line_no=1, sku="SKU-IT", quantity=qty, unit_price=Money.cny(paid // qty + 100),
                           paid=Money.cny(paid))], shipping_fee=Money.cny(600)),
        o.OrderPaid(order_id=oid, paid_at=now - timedelta(hours=20))]
    if state in ("SHIPPED", "COMPLETED"):
        facts.append(o.OrderShipped(order_id=oid, shipped_at=now - timedelta(hours=10)))
    if state == "COMPLETED":
        facts.append(o.OrderCompleted(order_id=oid, completed_at=now - timedelta(hours=1)))
    deps = service.Deps(settings)
    for fact in facts:
        async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
            await service.apply_order_event(new_envelope(fact, key=oid, producer="test"), uow, deps)
            await uow.commit()
    async with SqlFinanceUnitOfWork(sessions, "finance") as finance_uow:
        await finance.on_order_placed(new_envelope(facts[0], key=oid, producer="test"), finance_uow, deps)
        await finance_uow.commit()
    request = c.RequestAfterSales(request_id=uuid.uuid4(), order_id=oid, buyer_id="buyer-it",
                                  type=c.AfterSalesType(type_), lines=[c.RequestedLine(line_no=1, quantity=take)],
                                  reason_code="NO_LONGER_WANTED")
    async with SqlIntakeUnitOfWork(sessions, "intake") as uow:
        await service.request_after_sales(new_envelope(request, key=oid, producer="test"), uow, deps)
        ticket_id = uow.published[0].payload.ticket.ticket_id
        await uow.commit()
    async with sessions() as session:
        return await TicketStore(session).get(ticket_id, lock=False)


class Statements:
    """Counts the statements the engine sends while it is entered."""

    def __init__(self, sessions: Any) -> None:
        self.engine = sessions.kw["bind"].sync_engine
        self.sent: list[str] = []

    def _seen(self, *args: Any) -> None:
        self.sent.append(args[2])

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)
