"""Schemathesis against the running back office: whatever its OpenAPI document allows a client to
send (and the malformed inputs schemathesis derives from it), signed in as ops, the answer is
never a server error. Its own process on the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from services.backoffice import service
from services.backoffice.repository import SqlBackOfficeUnitOfWork
from services.backoffice.staff import StaffRole
from services.common.db import make_engine, make_session_factory
from services.common.settings import Settings

from .conftest import back_office_process

PASSWORD = "correct horse battery"


async def _account(settings: Settings) -> str:
    engine = make_engine(settings)
    username = f"ops-fuzz-{uuid.uuid4().hex[:8]}"
    try:
        async with SqlBackOfficeUnitOfWork(make_session_factory(engine), "back-office") as uow:
            await service.add_user(uow, username, PASSWORD, StaffRole.OPS, ["shop-fuzz"])
    finally:
        await engine.dispose()
    return username


@pytest.fixture(scope="module")
def running(stack: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    """The back office's address and an ops session's header."""
    process, base = back_office_process()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/me").status_code == 401:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the back office did not start: {process.log_tail('backoffice')}")
            time.sleep(0.3)
        username = asyncio.run(_account(stack))
        token = httpx.post(f"{base}/api/session", json={"username": username, "password": PASSWORD}).json()["token"]
        yield base, {"authorization": f"Bearer {token}"}
    finally:
        dead = process.dead()
        process.stop()
        assert not dead, process.log_tail("backoffice")


def operations(base: str) -> list[Any]:
    return [result.ok() for result in schemathesis.openapi.from_url(f"{base}/openapi.json").get_all_operations()]


# schemathesis's own pytest plugin (from_fixture, parametrize) does not run on pytest 9 yet; its
# strategies do, driven by hypothesis here, one operation after another
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_input_makes_the_back_office_fail(running: tuple[str, dict[str, str]], mode: GenerationMode) -> None:
    base, signed_in = running
    tried, nothing_to_break = [], []
    for operation in operations(base):
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(generation_mode=mode))
        def answers_without_a_server_error(case: Any) -> None:
            case.call_and_validate(base_url=base, headers=signed_in, checks=[not_a_server_error])

        try:
            answers_without_a_server_error()
        except Unsatisfiable:  # no parameter or body to make invalid (GET /api/me, say)
            assert mode == GenerationMode.NEGATIVE
            nothing_to_break.append(operation.label)
            continue
        tried.append(operation.label)
    assert len(tried) >= (17 if mode == GenerationMode.POSITIVE else 10), (tried, nothing_to_break)
