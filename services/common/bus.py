"""A small client for the systems around us (order system, buyer front end, back office):
publish a contract message, and watch topics for what the workers say. Used by the demo,
the CLI and the end-to-end tests."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import Contract, Envelope, InvalidMessage, decode, encode, new_envelope, topic_of

from .kafka import make_producer
from .settings import Settings


class Bus:
    def __init__(self, settings: Settings, producer_name: str = "bus") -> None:
        self.settings = settings
        self.name = producer_name
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Bus:
        self._producer = make_producer(self.settings, client_id=self.name)
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, payload: Contract, *, key: str, topic: str | None = None) -> Envelope[Any]:
        """Publishes as the system the catalogue names for that topic (the bus stands in for the
        order system, the buyer front end and the back office), unless it is one of them itself."""
        producer = self._require_producer()
        home = topic_of(type(payload))
        envelope = new_envelope(payload, key=key, producer=self.name if self.name in home.producers
                                else home.producers[0])
        await producer.send_and_wait(topic or home.name, encode(envelope), key=key.encode())
        return envelope

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("Bus is used outside its async with block")
        return self._producer

    async def send_raw(self, topic: str, value: bytes, key: str | bytes | None) -> None:
        """Any bytes, any key: how hostile input is sent in tests and the fuzz run."""
        raw_key = key.encode() if isinstance(key, str) else key
        await self._require_producer().send_and_wait(topic, value, key=raw_key)


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
            *self.topics, bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"watcher-{uuid.uuid4()}", auto_offset_reset="latest", enable_auto_commit=False)
        await self._consumer.start()
        while not self._consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in self._consumer.assignment():  # pin 'latest' now, before anything is published
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
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
