"""Whole-system failure runs, small enough for every test run: the chaos run (mixed flows while
workers are SIGKILLed and the broker restarts, checked from the topics alone) and the fuzz run
(hostile messages on every consumed topic among valid flows). The full-size runs are the
``aftersales chaos`` and ``aftersales fuzz`` commands; both print the same table."""

from __future__ import annotations

import pytest

from services import chaos, fuzz
from services.common.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.timeout(420)  # room for a slow run to report its checks; a hung one still fails well inside CI
async def test_a_small_chaos_run_violates_no_invariant(stack: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    violations = await chaos.run(stack.with_changes(log_level="WARNING"), tickets=300, kills=3,
                                 broker_restart=True, postgres_restart=True, freeze=False, seed=5)
    report = capsys.readouterr().out
    print(report)
    assert violations == 0, report
    assert "SIGKILLs" in report
    assert "kafka (" in report
    assert "postgres (" in report


async def test_a_small_fuzz_run_leaves_no_hostile_message_silent(stack: Settings,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    violations = await fuzz.run(stack.with_changes(log_level="WARNING"), messages=200, flows=15, seed=3)
    report = capsys.readouterr().out
    print(report)
    assert violations == 0, report
    assert "hostile messages" in report
    assert "200" in report
