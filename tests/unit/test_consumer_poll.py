"""A worker's consumer hands over records as soon as they arrive: no sleep after an empty poll.

FastStream's batch subscriber sleeps as long again after every empty poll, which made an idle
worker up to 50 ms late for each hop of a ticket; the runtime's subscriber does not."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber import usecase

from services.common.settings import Settings
from services.simulators.order_system import build_worker


class OnePollConsumer:
    """Nothing on the first poll, one record on the second."""

    def __init__(self) -> None:
        self.polls: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int | None) -> dict[str, list[str]]:
        self.polls.append(timeout_ms)
        return {} if len(self.polls) == 1 else {"orders.commands-0": ["record"]}


@pytest.fixture
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    async def sleep(seconds: float) -> None:
        raise AssertionError(f"the consumer slept {seconds} s after an empty poll")
    monkeypatch.setattr(usecase.anyio, "sleep", sleep)


def subscriber_of_a_worker() -> Any:
    broker = KafkaBroker("127.0.0.1:1")
    build_worker(Settings())._subscribe(broker)
    (subscriber,) = broker.subscribers
    return subscriber


@pytest.mark.usefixtures("no_sleeping")
async def test_an_empty_poll_is_followed_by_the_next_poll_at_once() -> None:
    consumer = OnePollConsumer()
    subscriber = subscriber_of_a_worker()

    assert await subscriber.get_msg(consumer) == ()
    assert await subscriber.get_msg(consumer) == ("record",)
    assert len(consumer.polls) == 2


@pytest.mark.usefixtures("no_sleeping")
async def test_faststreams_own_batch_subscriber_would_sleep() -> None:
    """The reason for the runtime's subclass: if FastStream stops sleeping, it can go."""
    subscriber = subscriber_of_a_worker()
    with pytest.raises(AssertionError, match="slept"):
        await usecase.BatchSubscriber.get_msg(subscriber, OnePollConsumer())


class TwoPartitionsConsumer:
    """One fetch over two topics, handed over partition by partition as aiokafka does."""

    def __init__(self, batches: dict[str, list[Any]]) -> None:
        self.batches = batches

    async def getmany(self, timeout_ms: int, max_records: int | None) -> dict[str, list[Any]]:
        return self.batches


async def test_a_fetched_batch_comes_in_the_order_it_was_written_each_partition_in_offset_order() -> None:
    """A ticket event fetched with the order fact written before it on another topic comes after
    it; a partition's own records keep their offset order even where their times do not rise."""
    from collections import namedtuple

    record = namedtuple("record", "topic offset timestamp")
    tickets = [record("aftersales.tickets", 0, 1_030), record("aftersales.tickets", 1, 1_050)]
    orders = [record("orders.events", 7, 1_010), record("orders.events", 8, 1_040), record("orders.events", 9, 1_035)]
    subscriber = subscriber_of_a_worker()

    fetched = TwoPartitionsConsumer({"aftersales.tickets-0": tickets, "orders.events-0": orders})
    batch = await subscriber.get_msg(fetched)

    assert [(r.topic, r.offset) for r in batch] == [
        ("orders.events", 7), ("aftersales.tickets", 0), ("orders.events", 8), ("orders.events", 9),
        ("aftersales.tickets", 1)]
