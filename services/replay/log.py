"""Reading the recorded inputs back from Kafka, without a consumer group and without committing.

The inputs are the topics written by people and by the systems outside the after-sales workers
(``INPUTS``); every other topic is what the workers told each other, which a replay makes again.
Each partition is read in offset order (one order's messages share a partition, keyed by order
id), and the partitions are merged by record time, so each order's inputs come back in the order
they were written and the clock only moves forward.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from contracts.admin import ReplayDeadLetter
from contracts.topics import (
    ADMIN_COMMANDS,
    COMPENSATION_ACKS,
    DECISIONS,
    ERP_ACKS,
    ORDER_EVENTS,
    REFUND_RESULTS,
    REQUESTS,
    WMS_EVENTS,
    Topic,
)
from services.common.settings import Settings

INPUTS: tuple[Topic, ...] = (ORDER_EVENTS, REQUESTS, DECISIONS, ADMIN_COMMANDS, REFUND_RESULTS, WMS_EVENTS,
                             ERP_ACKS, COMPENSATION_ACKS)
SHOP_WIDE_KEYS = ("reasons.",)  # admin commands not about one order (ADMIN_COMMANDS' keys)
REPLAY_DEAD_LETTER = ReplayDeadLetter.event_type
PRINCIPAL = "replay"  # the Kafka principal the catalogue lets read the inputs, and nothing else


@dataclass(frozen=True)
class Recorded:
    """One input as the log holds it."""

    topic: str
    partition: int
    offset: int
    at: datetime  # the record's time: when it was written to the log
    key: str
    value: bytes
    type: str  # the envelope's message type ("" when the record is not a readable envelope)


@dataclass(frozen=True)
class Reach:
    """How far back one partition of an input topic still reaches."""

    topic: str
    partition: int
    first_offset: int
    end_offset: int

    @property
    def truncated(self) -> bool:
        """Retention (or a deletion) removed its first records: a rebuild from it is incomplete."""
        return self.first_offset > 0


@dataclass(frozen=True)
class RecordedLog:
    inputs: list[Recorded]
    reach: list[Reach]

    @property
    def truncated(self) -> list[Reach]:
        return [r for r in self.reach if r.truncated]

    def of_orders(self, orders: set[str]) -> list[Recorded]:
        """The inputs of these orders, and the shop-wide configuration people changed (the reasons
        catalogue), which any order's request may depend on."""
        chosen = {id(r) for r in self.inputs if r.key in orders or r.key.startswith(SHOP_WIDE_KEYS)}
        where = {(r.topic, r.partition, r.offset) for r in self.inputs if id(r) in chosen}
        for record in self.inputs:  # an admin's replay of one of their dead letters (keyed by the letter)
            if record.type == REPLAY_DEAD_LETTER and _points_at(record) in where:
                chosen.add(id(record))
        return [r for r in self.inputs if id(r) in chosen]


def _points_at(record: Recorded) -> tuple[str, int, int] | None:
    """Where the original of a dead letter's replay is (None if the command is unreadable)."""
    try:
        payload = json.loads(record.value)["payload"]
        return str(payload["source_topic"]), int(payload["partition"]), int(payload["offset"])
    except (ValueError, KeyError, TypeError):
        return None


def _type_of(value: bytes) -> str:
    try:
        found = json.loads(value).get("type", "")
    except (ValueError, AttributeError):
        return ""
    return found if isinstance(found, str) else ""


async def read_inputs(settings: Settings, *, topics: Iterable[Topic] = INPUTS,
                      progress: Callable[[int, int], None] = lambda done, total: None) -> RecordedLog:
    """Everything the input topics hold now (up to their end offsets when the read starts)."""
    topics = list(topics)
    partitions = await _partitions(settings, [topic.name for topic in topics])
    consumer = AIOKafkaConsumer(**settings.kafka_client(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(partitions)
        first = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        total = sum(end[tp] - first[tp] for tp in partitions)
        per_partition: dict[TopicPartition, list[Recorded]] = {tp: [] for tp in partitions}
        waiting = {tp for tp in partitions if end[tp] > first[tp]}
        for tp in partitions:
            consumer.seek(tp, first[tp])
        done = 0
        while waiting:
            batches = await consumer.getmany(*waiting, timeout_ms=2000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= end[tp]:
                        break
                    value = record.value or b""
                    per_partition[tp].append(Recorded(
                        record.topic, record.partition, record.offset,
                        datetime.fromtimestamp(record.timestamp / 1000, UTC),
                        (record.key or b"").decode("utf-8", "replace"), value, _type_of(value)))
                    done += 1
            for tp in list(waiting):
                if await consumer.position(tp) >= end[tp]:
                    waiting.discard(tp)
            progress(done, total)
        reach = [Reach(tp.topic, tp.partition, first[tp], end[tp]) for tp in partitions]
    finally:
        await consumer.stop()
    return RecordedLog(merged(per_partition.values(), [topic.name for topic in topics]), reach)


def merged(partitions: Iterable[list[Recorded]], topics: list[str]) -> list[Recorded]:
    """The partitions (each in offset order) merged by record time. Records of the same
    millisecond come in the order of their topics in ``topics`` (``INPUTS`` is the order of the
    flow: a request before the decision on its ticket), not in the order the partitions were
    listed: a decision written in the millisecond of its request was replayed before the request,
    and refused as a decision on no ticket."""
    place = {name: index for index, name in enumerate(topics)}
    return list(heapq.merge(*partitions, key=lambda record: (record.at, place.get(record.topic, len(place)))))


async def _partitions(settings: Settings, names: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**settings.kafka_client())
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return sorted(TopicPartition(topic["topic"], p["partition"]) for topic in described
                  for p in topic["partitions"])
