"""Kafka clients configured the one way every worker uses them."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from contracts import CATALOGUE

from .settings import Settings


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """Idempotent producer, acks from all in-sync replicas: no duplicates from producer retries."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=client_id,
        enable_idempotence=True, acks="all", linger_ms=2, request_timeout_ms=30_000)


async def wait_for_kafka(settings: Settings, timeout: float = 60.0) -> None:
    """A listening port is not a serving broker: wait until a metadata request succeeds."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Exception | None = None
    while asyncio.get_running_loop().time() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
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
    raise RuntimeError(f"Kafka at {settings.kafka_bootstrap_servers} did not answer: {last}")


async def ensure_topics(settings: Settings) -> list[str]:
    """Creates every catalogue topic that is missing; returns the ones it created."""
    await wait_for_kafka(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
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
        return created
    finally:
        await admin.close()
