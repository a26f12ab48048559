"""Test infrastructure: the real Kafka, PostgreSQL and Redis.

With a Docker daemon, testcontainers starts them; without one (this project's machines),
the stack started by ``deploy/local/up.sh`` is used through KAFKA_BOOTSTRAP_SERVERS,
DATABASE_URL and REDIS_URL (``./dev test`` starts it and sets them).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# where buyers send goods back in every test shop (a return is approved only with an address)
RETURN_DESK = json.dumps({"*": {"recipient": "Returns desk", "phone": "400-000-0000",
                                "address": "Returns warehouse, 1 Test Road", "instructions": "Original box"}})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        # whichever docker is on PATH: the same one testcontainers would use
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    if os.environ.get("AFTERSALES_TESTCONTAINERS", "auto") != "never" and _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka, \
                PostgresContainer("postgres:15", driver="asyncpg") as pg, RedisContainer("redis:7") as redis:
            yield {"KAFKA_BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(),
                   "AFTERSALES_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",  # the container's broker is unsecured
                   "DATABASE_URL": pg.get_connection_url(),
                   "REDIS_URL": f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"}
        return
    missing = [v for v in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL") if not os.environ.get(v)]
    if missing:
        pytest.fail(f"no Docker daemon and {', '.join(missing)} not set: start the local stack with "
                    "`bash deploy/local/up.sh && source .local/env`, or run `./dev test`", pytrace=False)
    yield {v: os.environ[v] for v in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL")}


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str]) -> Settings:
    os.environ.update(stack_env)
    return Settings(max_attempts=3, retry_backoff_seconds=0.05, outbox_poll_seconds=0.1,
                    scheduler_tick_seconds=0.2, log_json=True, log_level="WARNING", return_addresses=RETURN_DESK)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(settings: Settings) -> AsyncIterator[Settings]:
    """Topics exist and the schema is current, once per session."""
    from alembic import command

    from services.common.kafka import ensure_topics
    from services.common.migrations_check import alembic_config

    await ensure_topics(settings)
    await asyncio.to_thread(command.upgrade, alembic_config(settings.database_url), "head")
    yield settings


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sessions(stack: Settings):  # type: ignore[no-untyped-def]
    from services.common.db import make_engine, make_session_factory

    engine = make_engine(stack)
    yield make_session_factory(engine)
    await engine.dispose()
