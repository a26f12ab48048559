"""Every worker's routes against the topic catalogue: a worker subscribes to exactly the topics
that name it as a consumer, and every message type such a topic carries reaches at least one of
its consumers (a type nobody handles would be skipped by all of them, silently)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from contracts.topics import CATALOGUE, ORDER_EVENTS, TICKETS
from services.cli import WORKERS
from services.common.routes import Subscription, route
from services.common.settings import Settings
from services.intake import service as intake


def built() -> dict[str, Any]:
    settings = Settings()
    return {name: importlib.import_module(module).build_worker(settings) for name, module in WORKERS.items()}


def handled(worker: Any) -> dict[str, set[str]]:
    return {sub.topic_name: set(sub.by_type) for sub in worker.subscriptions}


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_a_worker_reads_exactly_the_topics_that_name_it(name: str) -> None:
    worker = built()[name]
    expected = {t.name for t in CATALOGUE if worker.name in t.consumers}  # the name Kafka knows it by
    assert set(handled(worker)) == expected


@pytest.mark.parametrize("topic", [t for t in CATALOGUE if set(t.consumers) & set(WORKERS)], ids=lambda t: t.name)
def test_every_type_a_topic_carries_reaches_one_of_its_consumers(topic: Any) -> None:
    workers = built()
    reached: set[str] = set()
    for name in set(topic.consumers) & set(WORKERS):
        reached |= handled(workers[name]).get(topic.name, set())
    assert reached == {m.event_type for m in topic.messages}


def test_a_route_for_a_type_the_topic_does_not_carry_is_refused_when_the_worker_is_built() -> None:
    with pytest.raises(ValueError, match="not carried"):
        Subscription(TICKETS, [route(ORDER_EVENTS.messages[0], intake.apply_order_event)])


def test_two_routes_for_one_type_are_refused() -> None:
    placed = ORDER_EVENTS.messages[0]
    with pytest.raises(ValueError, match="two routes"):
        Subscription(ORDER_EVENTS, [route(placed, intake.apply_order_event), route(placed, intake.apply_order_event)])
