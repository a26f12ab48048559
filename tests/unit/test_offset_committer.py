"""Offsets are committed only for handled messages, in batches, never mid-handling."""

import asyncio

import pytest

from services.common.runtime import OffsetCommitter


class FakeMessage:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    async def ack(self) -> None:
        self.log.append(f"commit after {self.name}")


async def test_commits_every_n_handled_messages():
    log: list[str] = []
    committer = OffsetCommitter(every=2, seconds=3600)
    committer._last = asyncio.get_running_loop().time()
    for i in range(5):
        async with committer.handling(FakeMessage(log, f"m{i}")):
            log.append(f"handled m{i}")
    assert log == ["handled m0", "handled m1", "commit after m1", "handled m2", "handled m3",
                   "commit after m3", "handled m4"]
    await committer.flush()
    assert log[-1] == "commit after m4"


async def test_a_background_flush_waits_for_the_message_in_flight():
    log: list[str] = []
    committer = OffsetCommitter(every=100, seconds=3600)
    committer._last = asyncio.get_running_loop().time()
    async with committer.handling(FakeMessage(log, "m0")):
        log.append("handled m0")
    release = asyncio.Event()

    async def slow_handler() -> None:
        async with committer.handling(FakeMessage(log, "m1")):
            await release.wait()
            log.append("handled m1")

    task = asyncio.create_task(slow_handler())
    await asyncio.sleep(0)
    flush = asyncio.create_task(committer.flush())
    await asyncio.sleep(0.01)
    assert log == ["handled m0"]  # no commit while m1 is in flight
    release.set()
    await asyncio.gather(task, flush)
    assert log == ["handled m0", "handled m1", "commit after m1"]


async def test_a_failed_message_is_never_committed():
    log: list[str] = []
    committer = OffsetCommitter(every=1, seconds=0)
    with pytest.raises(RuntimeError):
        async with committer.handling(FakeMessage(log, "m0")):
            raise RuntimeError("boom")
    await committer.flush()
    assert log == []


def test_retry_schedules_back_off_exponentially():
    from datetime import timedelta

    from services.common.retry import backoff

    assert [backoff(2, n) for n in (1, 2, 3, 4)] == [timedelta(seconds=s) for s in (2, 4, 8, 16)]


class RefusingMessage:
    """The broker refuses the commit (a rebalance or a restart), then accepts it."""

    def __init__(self, log: list[str]) -> None:
        self.log, self.refusals = log, 1

    async def ack(self) -> None:
        if self.refusals:
            self.refusals -= 1
            from aiokafka.errors import CommitFailedError
            raise CommitFailedError("group rebalanced")
        self.log.append("committed")


async def test_a_refused_commit_is_kept_pending_and_retried_not_fatal():
    log: list[str] = []
    committer = OffsetCommitter(every=1, seconds=3600)
    message = RefusingMessage(log)
    async with committer.handling(message):  # type: ignore[arg-type]
        pass
    assert log == []
    await committer.flush()
    assert log == ["committed"]


async def test_a_closed_committer_commits_nothing_more():
    log: list[str] = []
    committer = OffsetCommitter(every=1, seconds=3600)
    committer.close()
    async with committer.handling(FakeMessage(log, "m0")):  # type: ignore[arg-type]
        pass
    await committer.flush()
    assert log == []


async def test_shutdown_does_not_wait_for_ever_on_a_stuck_handler():
    committer = OffsetCommitter(every=100, seconds=3600)
    stuck = asyncio.Event()

    async def handler_that_never_returns() -> None:
        async with committer.handling(FakeMessage([], "m0")):  # type: ignore[arg-type]
            stuck.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(handler_that_never_returns())
    await stuck.wait()
    await asyncio.wait_for(committer.flush(timeout=0.2), 2)  # returns, uncommitted
    task.cancel()
