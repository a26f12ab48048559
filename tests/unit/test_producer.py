"""A producer the broker no longer recognises (after a restart) is replaced, not retried for ever."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from services.common import kafka
from services.common.settings import Settings


class FakeProducer:
    def __init__(self, fails_with: Exception | None) -> None:
        self.fails_with, self.sent, self.stopped = fails_with, [], False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, value: bytes, **_: Any) -> str:
        if self.fails_with:
            raise self.fails_with
        self.sent.append((topic, value))
        return "meta"


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> list[FakeProducer]:
    made: list[FakeProducer] = []
    queue: list[Exception | None] = [OutOfOrderSequenceNumber(), None]

    def make(settings: Settings, client_id: str) -> FakeProducer:
        made.append(FakeProducer(queue.pop(0) if queue else None))
        return made[-1]
    monkeypatch.setattr(kafka, "make_producer", make)
    return made


async def test_a_producer_out_of_sequence_is_replaced_and_the_retry_goes_through(producers):
    producer = kafka.Producer(Settings(), "t")
    await producer.start()
    with pytest.raises(OutOfOrderSequenceNumber):  # the caller's retry loop sees an infrastructure error
        await producer.send_and_wait("topic", b"v")
    assert producer.replaced == 1
    assert producers[0].stopped
    assert await producer.send_and_wait("topic", b"v") == "meta"
    assert producers[1].sent == [("topic", b"v")]


async def test_a_timeout_keeps_the_producer(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(kafka, "make_producer", lambda settings, client_id: FakeProducer(KafkaTimeoutError()))
    producer = kafka.Producer(Settings(), "t")
    await producer.start()
    with pytest.raises(KafkaTimeoutError):
        await producer.send_and_wait("topic", b"v")
    assert producer.replaced == 0
