"""Kafka clients configured the one way every worker uses them."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaConnectionError,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TopicAlreadyExistsError,
    UnknownProducerId,
)
from aiokafka.structs import ConsumerRecord, RecordMetadata, TopicPartition

from contracts import CATALOGUE

from .settings import Settings


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """Idempotent producer, acks from all in-sync replicas: no duplicates from producer retries."""
    return AIOKafkaProducer(
        **settings.kafka_client(), client_id=client_id,
        enable_idempotence=True, acks="all", linger_ms=settings.kafka_linger_ms, request_timeout_ms=30_000)


# After a broker restart the broker may no longer know this producer's id or sequence numbers:
# an idempotent aiokafka producer then fails every send from there on. Only a new one recovers.
_PRODUCER_BROKEN = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, InvalidProducerIdMapping,
                    ProducerFenced)


class Producer:
    """The worker's one producer (outbox relay, dead letters, direct alerts), replaced by a fresh
    idempotent producer when the broker stops recognising it. The failing send still raises (an
    infrastructure failure: the caller retries, and the retry goes through the new producer);
    the outbox republishes what was not marked, and inboxes drop any copy."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self.replaced = 0

    async def start(self) -> None:
        producer = make_producer(self.settings, self.client_id)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    def _current(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaConnectionError("producer is not started")
        return self._producer

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None,
                            headers: list[tuple[str, bytes]] | None = None) -> RecordMetadata:
        try:
            return await self._current().send_and_wait(topic, value, key=key, headers=headers)
        except _PRODUCER_BROKEN:
            await self.replace()
            raise

    async def send_batch(self, messages: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]]) -> None:
        """Sends all, in order, and waits until the broker has every one."""
        producer = self._current()
        try:
            futures = [await producer.send(topic, value, key=key, headers=headers)
                       for topic, value, key, headers in messages]
            await asyncio.gather(*futures)
        except _PRODUCER_BROKEN:
            await self.replace()
            raise

    async def ping(self) -> None:
        """Raises unless the broker serves metadata to this producer now (readiness)."""
        await self._current().client.fetch_all_metadata()

    async def replace(self) -> None:
        old, self._producer = self._producer, None
        self.replaced += 1
        if old is not None:
            with contextlib.suppress(Exception):  # the old producer is broken; its stop may fail too
                await old.stop()
        await self.start()



async def read_at(settings: Settings, topic: str, partition: int, offset: int) -> ConsumerRecord | None:
    """The one record at ``offset`` (no consumer group, nothing committed), or None when the
    topic no longer holds it (retention passed): how a dead letter's original is read back."""
    consumer = AIOKafkaConsumer(**settings.kafka_client(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        where = TopicPartition(topic, partition)
        consumer.assign([where])
        consumer.seek(where, offset)
        batch = await consumer.getmany(where, timeout_ms=10_000, max_records=1)
        found = batch.get(where, [])
        return found[0] if found and found[0].offset == offset else None
    finally:
        await consumer.stop()


async def wait_for_kafka(settings: Settings, timeout: float = 60.0) -> None:
    """A listening port is not a serving broker: wait until a metadata request succeeds."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Exception | None = None
    while asyncio.get_running_loop().time() < deadline:
        admin = AIOKafkaAdminClient(**settings.kafka_client(),
                                    request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise KafkaConnectionError(f"Kafka at {settings.kafka_bootstrap_servers} did not answer: {type(last).__name__}")


async def ensure_topics(settings: Settings) -> list[str]:
    """Creates every catalogue topic that is missing; returns the ones it created."""
    await wait_for_kafka(settings)
    admin = AIOKafkaAdminClient(**settings.kafka_client())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in CATALOGUE if t.name not in existing]
        created = []
        for topic in missing:
            try:
                await admin.create_topics([NewTopic(
                    topic.name, num_partitions=topic.partitions or settings.topic_partitions,
                    replication_factor=1, topic_configs=dict(topic.extra_config))])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        kept = [t for t in CATALOGUE if t.extra_config and t.name not in created]
        if kept:  # a topic made before its settings were catalogued (the inputs' retention) gets them now
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t.name, dict(t.extra_config))
                                       for t in kept])
        return created
    finally:
        await admin.close()
