"""What a worker process tells ops about itself: Prometheus metrics, liveness and readiness.

Every worker (and the back office) serves, on its own port (``AFTERSALES_METRICS_PORT``; off when
unset), three routes:

- ``/metrics``: messages consumed and produced per topic, handling time, batch size, outcomes,
  infrastructure retries, dead letters per reason, outbox backlog and the age of its oldest
  unpublished row, consumer lag per partition, periodic-job failures.
- ``/healthz``: the process and its event loop answer (a hung loop answers nothing, so the
  orchestrator restarts it).
- ``/readyz``: PostgreSQL answers, the schema is one this code accepts, the broker serves
  metadata and the consumer holds its group assignment; 503 with the failing checks otherwise,
  so a load balancer or a rolling deploy waits for it.

Why a registry per process object, not prometheus_client's global one: tests run several workers
in one process, and each must count only its own. Why the outbox figures come from a small loop
and not from the scrape: a scrape must not wait on the database (an outage would turn every
scrape into a time-out); the loop keeps the last figures it read and says when it read them.
Why lag is read from each fetched batch: aiokafka knows each partition's high watermark from the
fetch, so ``highwater - (offset + 1)`` costs no request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .failures import describe
from .logging import get_logger

log = get_logger("metrics")

HANDLE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
CHECK_TIMEOUT_SECONDS = 3.0

Check = Callable[[], Awaitable[None]]


class WorkerMetrics:
    """The figures of one worker process; the runtime calls these as messages move."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.consumed = Counter("aftersales_messages_consumed", "Records fetched, per topic", ["topic"],
                                registry=registry)
        self.produced = Counter("aftersales_messages_produced", "Messages acknowledged by Kafka, per topic",
                                ["topic"], registry=registry)
        self.outcomes = Counter("aftersales_message_outcomes", "What became of each consumed message",
                                ["outcome"], registry=registry)
        self.handle_seconds = Histogram("aftersales_handle_seconds",
                                        "Time to bring a fetched batch (or one replayed message) to its outcome",
                                        ["path"], buckets=HANDLE_BUCKETS, registry=registry)
        self.batch_size = Histogram("aftersales_batch_size", "Records per fetched batch", buckets=BATCH_BUCKETS,
                                    registry=registry)
        self.retries = Counter("aftersales_infrastructure_retries",
                               "Waits on PostgreSQL, Kafka or Redis (never a dead letter)", ["what"], registry=registry)
        self.dead_letters = Counter("aftersales_dead_letters", "Messages dead-lettered, per reason code",
                                    ["reason"], registry=registry)
        self.job_failures = Counter("aftersales_periodic_job_failures",
                                    "Periodic-job ticks paused by an outage and items quarantined",
                                    ["job", "kind"], registry=registry)
        self.outbox_backlog = Gauge("aftersales_outbox_backlog", "Outbox rows not yet published", registry=registry)
        self.outbox_oldest = Gauge("aftersales_outbox_oldest_age_seconds",
                                   "Age of the oldest unpublished outbox row (0 when none)", registry=registry)
        self.outbox_read_at = Gauge("aftersales_outbox_figures_read_at_seconds",
                                    "When the outbox figures were last read (unix time)", registry=registry)
        self.lag = Gauge("aftersales_consumer_lag", "Records behind the partition's end, after the last batch",
                         ["topic", "partition"], registry=registry)
        self.assigned = Gauge("aftersales_assigned_partitions", "Partitions this process holds in its group",
                              registry=registry)

    def fetched(self, records: Iterable[Any], highwater: Callable[[Any], int | None]) -> None:
        """A batch arrived: counts it per topic and notes how far behind each partition is."""
        last: dict[tuple[str, int], int] = {}
        size = 0
        for record in records:
            size += 1
            self.consumed.labels(record.topic).inc()
            last[(record.topic, record.partition)] = record.offset
        self.batch_size.observe(size)
        for (topic, partition), offset in last.items():
            end = highwater((topic, partition))
            if end is not None:
                self.lag.labels(topic, str(partition)).set(max(end - offset - 1, 0))

    @contextlib.contextmanager
    def timing(self, path: str) -> Generator[None, None, None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.handle_seconds.labels(path).observe(time.perf_counter() - started)

    def outbox(self, backlog: int, oldest_age_seconds: float) -> None:
        self.outbox_backlog.set(backlog)
        self.outbox_oldest.set(max(oldest_age_seconds, 0.0))
        self.outbox_read_at.set(time.time())


@dataclass
class Readiness:
    """The checks ``/readyz`` runs; each raises (or times out) when its dependency is not there."""

    checks: dict[str, Check] = field(default_factory=dict)
    assignment_received: bool = False  # the group coordinator gave this consumer its partitions
    needs_assignment: bool = True  # a process without subscriptions (a tool) has none to wait for

    async def report(self) -> tuple[bool, dict[str, str]]:
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failing: {describe(exc)}"[:200]
        if self.needs_assignment:
            results["partitions"] = "ok" if self.assignment_received else "failing: no group assignment yet"
        return all(result == "ok" for result in results.values()), results


def health_app(metrics: WorkerMetrics, readiness: Readiness) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "alive", "worker": metrics.worker})

    async def readyz(_: Request) -> JSONResponse:
        ready, checks = await readiness.report()
        return JSONResponse({"status": "ready" if ready else "not ready", "worker": metrics.worker,
                             "checks": checks}, status_code=200 if ready else 503)

    async def scrape(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", scrape)])


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside FastStream's run: FastStream owns the process's signals and stops us."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(app: Any, host: str, port: int) -> tuple[EmbeddedServer, asyncio.Task[None]]:
    """Starts ``app`` on the running loop; the caller sets ``should_exit`` and awaits the task."""
    server = EmbeddedServer(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    return server, task


async def stop_serving(server: EmbeddedServer, task: asyncio.Task[None], grace: float) -> None:
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, grace)
