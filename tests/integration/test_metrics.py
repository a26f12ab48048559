"""A worker's own port on the real stack: ``/healthz`` answers while the process lives,
``/readyz`` only while PostgreSQL (with an accepted schema) and the broker answer and the group
has given the consumer its partitions, and ``/metrics`` counts what the runtime did: records
consumed per topic, outcomes, messages produced, batch sizes and handling time, lag per
partition, the outbox backlog, and the waits of a database outage."""

from __future__ import annotations

import socket
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts import encode, new_envelope
from contracts.ops import OpsAlert
from contracts.topics import OPS_ALERTS
from services.common.bus import Bus
from services.common.routes import Subscription, route

from .helpers import eventually, new_topic, plain_worker
from .test_failure_path import PostgresProxy, alert, recording

pytestmark = pytest.mark.asyncio(loop_scope="session")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape by (name, labels), read with prometheus_client's own parser."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def test_a_worker_serves_health_readiness_and_the_runtimes_figures(stack, sessions):
    url = urlsplit(stack.database_url)
    proxy = PostgresProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.open()
    netloc = f"{url.username}:{url.password}@127.0.0.1:{proxy.port}"
    port = free_port()
    settings = stack.with_changes(database_url=urlunsplit(url._replace(netloc=netloc)), metrics_port=port,
                                  metrics_outbox_seconds=0.2, retry_backoff_seconds=0.05,
                                  retry_backoff_max_seconds=0.3)
    topic = await new_topic(stack, partitions=2)
    calls: list[str] = []
    worker = plain_worker(f"t-metrics-{uuid.uuid4().hex[:6]}", settings,
                          [Subscription(topic, [route(OpsAlert, recording(calls))])])
    app = worker.build_app()
    await app.start()
    base = f"http://127.0.0.1:{port}"
    cut = False
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        async def scraped() -> dict[Any, float]:
            answer = await http.get("/metrics")
            assert answer.status_code == 200
            return samples(answer.text)

        try:
            assert (await http.get("/healthz")).json()["status"] == "alive"
            await eventually(ready, timeout=30)
            keys = [f"O-{uuid.uuid4().hex[:8]}" for _ in range(3)]
            async with Bus(stack) as bus:
                for key in keys:
                    await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)

            async def counted() -> dict[Any, float] | None:
                found = await scraped()
                done = (value(found, "aftersales_messages_consumed_total", topic=topic) == 3
                        and value(found, "aftersales_messages_produced_total", topic=OPS_ALERTS.name) >= 3)
                return found if done else None

            found = await eventually(counted, timeout=30)
            assert value(found, "aftersales_message_outcomes_total", outcome="processed") == 3
            assert value(found, "aftersales_batch_size_count") >= 1
            assert value(found, "aftersales_handle_seconds_count", path="batch") >= 1
            lags = {labels: v for (name, labels), v in found.items() if name == "aftersales_consumer_lag"}
            assert lags
            assert all(v == 0 for v in lags.values())
            assert value(found, "aftersales_assigned_partitions") == 2
            assert value(found, "aftersales_outbox_figures_read_at_seconds") > 0

            await proxy.cut()  # the database goes away: alive, not ready, and the waits are counted
            cut = True
            key = f"O-{uuid.uuid4().hex[:8]}"
            async with Bus(stack) as bus:
                await bus.send_raw(topic, encode(new_envelope(alert(key), key=key, producer="t")), key=key)

            async def waiting() -> bool:
                return value(await scraped(), "aftersales_infrastructure_retries_total", what="apply") >= 3

            await eventually(waiting, timeout=30)
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"]["database_and_schema"].startswith("failing")
            assert not_ready.json()["checks"]["broker"] == "ok"
            assert (await http.get("/healthz")).status_code == 200
            assert value(await scraped(), "aftersales_dead_letters_total", reason="HANDLER_ERROR") == 0

            await proxy.open()
            cut = False
            await eventually(ready, timeout=30)
            await eventually(lambda: _has(calls, key), timeout=30)
        finally:
            if cut:
                await proxy.open()
            await app.stop()
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        with pytest.raises(httpx.ConnectError):  # the server stops with the worker
            await http.get("/healthz")


async def _has(calls: list[str], key: str) -> bool:
    return key in calls
