"""When partitions move, the old owner's rows leave before the new owner's (the runtime's
rebalance listener): revoked, a process waits for its running batch, commits its position and
sends what it committed; assigned, its relay reads the table before what it hands over."""

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import TopicPartition

from services.common.runtime import OffsetCommitter, _Assignment


class FakeMessage:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def ack(self) -> None:
        self.log.append("position committed")


class RecordingRelay:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def flush(self, timeout: float) -> None:
        self.log.append("rows sent")

    def read_table_first(self) -> None:
        self.log.append("table first")


def worker(log: list[str]) -> Any:
    offsets = OffsetCommitter(every=100, seconds=3600)
    return SimpleNamespace(name="t", ctx=SimpleNamespace(relay=RecordingRelay(log)), offsets=offsets,
                           settings=SimpleNamespace(shutdown_grace_seconds=5.0),
                           readiness=SimpleNamespace(assignment_received=False),
                           metrics=SimpleNamespace(assigned=SimpleNamespace(set=lambda n: None)))


async def test_a_revoked_process_finishes_its_batch_then_commits_then_sends_before_giving_up_partitions():
    log: list[str] = []
    owner = worker(log)
    owner.offsets._last = asyncio.get_running_loop().time()
    release = asyncio.Event()

    async def batch() -> None:
        async with owner.offsets.handling(FakeMessage(log)):
            await release.wait()
            log.append("batch committed")

    running = asyncio.create_task(batch())
    await asyncio.sleep(0)
    revoking = asyncio.create_task(_Assignment(owner).on_partitions_revoked({TopicPartition("t", 0)}))
    for _ in range(20):  # the listener runs as far as it can: up to the running batch
        await asyncio.sleep(0)
    assert not revoking.done()  # the group waits for the batch
    assert log == []
    release.set()
    await asyncio.gather(running, revoking)
    assert log == ["batch committed", "position committed", "rows sent"]


async def test_an_assigned_process_reads_the_table_before_what_it_hands_over():
    log: list[str] = []
    owner = worker(log)
    await _Assignment(owner).on_partitions_assigned({TopicPartition("t", 0)})
    assert log == ["table first"]
    assert owner.readiness.assignment_received
