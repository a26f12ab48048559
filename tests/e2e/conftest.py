"""End-to-end: every worker and simulator as its own process on the real stack.

The flow tests' processes live for their module only: the resilience module starts its own
(same consumer groups), restarts the broker and kills processes, and must be alone when it does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio
from redis.asyncio import Redis

from contracts import CATALOGUE
from services.actors import World, projection_probe
from services.common.bus import Bus, Watcher
from services.common.procs import ALL_WORKERS, WorkerProcesses, free_port, worker_of
from services.common.settings import Settings
from services.harness import wait_for_no_lag
from services.simulators.scenarios import clear_scenario, set_scenario
from tests.conftest import RETURN_DESK

ROOT = Path(__file__).resolve().parents[2]

E2E_ENV = {
    "AFTERSALES_SHOP_POLICIES": json.dumps({
        # orders placed hours ago in these tests are paid: no passive cancel may race the payment fact
        "shop-fast": {"finance_auto_approve_refund_only": True, "payment_timeout_days": 1},
        "shop-erp": {"has_erp": True},
        "shop-return-clock": {"return_window_seconds": 2},
        "shop-confirm-clock": {"reshipped_auto_confirm_seconds": 2},
    }),
    "AFTERSALES_RETURN_ADDRESSES": RETURN_DESK,
    "AFTERSALES_REFUND_RETRY_BASE_SECONDS": "1",
    "AFTERSALES_REFUND_MAX_ATTEMPTS": "3",
    "AFTERSALES_ERP_RETRY_BASE_SECONDS": "0.5",
    "AFTERSALES_ERP_MAX_ATTEMPTS": "3",
    "AFTERSALES_SCHEDULER_TICK_SECONDS": "0.3",
    "AFTERSALES_MAX_ATTEMPTS": "3",
    "AFTERSALES_LOG_LEVEL": "INFO",
}


async def caught_up(stack: Settings, workers: list[str], timeout: float = 180) -> None:
    """Waits until the workers' groups have read everything already on their topics: a test then
    starts from consumers that are at the end, not behind what earlier tests (or hostile runs on a
    machine's long-lived stack) left there."""
    await wait_for_no_lag(stack, sorted({stack.group(worker) for worker in workers}), timeout)


def back_office_process() -> tuple[WorkerProcesses, str]:
    """The back office as its own process on a free port (started), and its address."""
    port = free_port()
    process = WorkerProcesses(["backoffice"], ROOT / ".local" / "logs" / "e2e", env={
        **E2E_ENV, "AFTERSALES_BACKOFFICE_PORT": str(port), "AFTERSALES_BACKOFFICE_COOKIE_SECURE": "false"})
    process.start()
    return process, f"http://127.0.0.1:{port}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def workers(stack: Settings) -> AsyncIterator[WorkerProcesses]:
    procs = WorkerProcesses(ALL_WORKERS, ROOT / ".local" / "logs" / "e2e", env=E2E_ENV, replicas=2, metrics=True)
    procs.start()
    await procs.ready()
    await caught_up(stack, [worker_of(name) for name in procs.workers])
    yield procs
    dead = procs.dead()
    procs.stop()
    assert not dead, f"worker processes died during the e2e run: {dead}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(stack: Settings, workers: WorkerProcesses, sessions) -> AsyncIterator[World]:  # type: ignore[no-untyped-def]
    async with Bus(stack, "e2e") as bus, Watcher(stack, [t.name for t in CATALOGUE]) as watcher:
        yield World(bus, watcher, projection_probe(sessions))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis(stack: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(stack.redis_url)
    yield client
    await client.aclose()


Scenario = Callable[[str, str, str], Awaitable[None]]


@pytest_asyncio.fixture(loop_scope="session")
async def scenario(redis: Redis) -> AsyncIterator[Scenario]:
    """Sets simulator scenarios for one test (call counters reset) and clears them afterwards,
    whether the test passed or not, so no other test meets a shop-wide failure it did not ask for."""
    touched: list[tuple[str, str]] = []

    async def set_for_this_test(system: str, subject: str, name: str) -> None:
        if (system, subject) not in touched:
            await clear_scenario(redis, system, subject)
            touched.append((system, subject))
        await set_scenario(redis, system, subject, name)

    yield set_for_this_test
    for system, subject in touched:
        await clear_scenario(redis, system, subject)
