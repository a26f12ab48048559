"""Helpers for integration tests on the real broker and database: fresh topics, reading topics,
and a worker running in this process with the production runtime."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import func, select

from contracts import InvalidMessage, decode
from services.common.settings import Settings
from services.common.tables import OutboxRow


async def new_topic(settings: Settings, partitions: int = 3) -> str:
    name = f"test.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def read_topic(settings: Settings, topic: str, predicate: Callable[[Any], bool], count: int,
                     timeout: float = 20.0, settle: float = 0.0) -> list[Any]:
    """Reads ``topic`` from the start until ``count`` matching envelopes were seen (then waits
    ``settle`` seconds more, to catch copies that should not exist)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                group_id=f"reader-{uuid.uuid4()}")
    await consumer.start()
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
