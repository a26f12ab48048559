"""A small client for the systems around us (order system, buyer front end, back office):
publish a contract message, and watch topics for what the workers say. Used by the demo, the
CLI, the end-to-end tests and the chaos and fuzz runs.

A publish that fails (the broker is restarting) is retried with the same bytes, so it stays one
message with one event id; a producer the broker no longer recognises is replaced."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from contracts import Contract, Envelope, InvalidMessage, decode, encode, new_envelope, topic_of

from .failures import describe
from .kafka import Producer
from .logging import get_logger
from .settings import Settings

log = get_logger("bus")


class Bus:
    def __init__(self, settings: Settings, producer_name: str = "bus", give_up_after: float = 300.0) -> None:
        self.settings = settings
        self.name = producer_name
        self.give_up_after = give_up_after
        self._producer: Producer | None = None

    async def __aenter__(self) -> Bus:
        self._producer = Producer(self.settings, client_id=self.name)
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, payload: Contract, *, key: str, topic: str | None = None,
                      producer: str | None = None) -> Envelope[Any]:
        """Publishes as the system the catalogue names for that topic (the bus stands in for the
        order system, the buyer front end and the back office), unless it is one of them itself;
        ``producer`` names another on purpose (hostile input)."""
        home = topic_of(type(payload))
        envelope = new_envelope(payload, key=key, producer=producer or (
            self.name if self.name in home.producers else home.producers[0]))
        await self.send_raw(topic or home.name, encode(envelope), key)
        return envelope

    async def send_raw(self, topic: str, value: bytes, key: str | bytes | None) -> tuple[int, int]:
        """Any bytes, any key (how hostile input is sent); returns the (partition, offset) it got."""
        raw_key = key.encode() if isinstance(key, str) else key
        if self._producer is None:
            raise RuntimeError("Bus is used outside its async with block")
        deadline = asyncio.get_running_loop().time() + self.give_up_after
        while True:
            try:
                meta = await self._producer.send_and_wait(topic, value, key=raw_key)
                return meta.partition, meta.offset
            except KafkaError as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.warning("publish_retry", topic=topic, error=describe(exc))
                await asyncio.sleep(1)


class Watcher:
    """Consumes topics from their end (offsets taken at start) and keeps messages per key."""

    def __init__(self, settings: Settings, topics: Iterable[str]) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.by_key: dict[str, list[tuple[str, Envelope[Any]]]] = defaultdict(list)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Watcher:
        self._consumer = AIOKafkaConsumer(
            *self.topics, **self.settings.kafka_client(),
            group_id=f"watcher-{uuid.uuid4()}", auto_offset_reset="latest", enable_auto_commit=False)
        await self._consumer.start()
        while not self._consumer.assignment():  # noqa: ASYNC110 - aiokafka signals no event for the first assignment
            await asyncio.sleep(0.05)
        for tp in self._consumer.assignment():  # pin 'latest' now, before anything is published
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run(self._consumer))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        async for record in consumer:
            try:
                envelope = decode(record.value)
            except InvalidMessage:
                continue
            key = record.key.decode() if record.key else ""
            async with self._changed:
                self.by_key[key].append((record.topic, envelope))
                self._changed.notify_all()

    def messages(self, key: str, type_name: str | None = None) -> list[Envelope[Any]]:
        return [e for _, e in self.by_key.get(key, []) if type_name is None or e.type == type_name]

    async def wait_for(self, key: str, predicate: Callable[[Envelope[Any]], bool],
                       timeout: float = 30.0) -> Envelope[Any]:
        async def find() -> Envelope[Any]:
            async with self._changed:
                while True:
                    for _, envelope in self.by_key.get(key, []):
                        if predicate(envelope):
                            return envelope
                    await self._changed.wait()
        return await asyncio.wait_for(find(), timeout)
