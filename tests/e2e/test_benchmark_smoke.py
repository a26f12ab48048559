"""The benchmark command's smoke mode: every step runs (the peers, pgbench, whole lifecycles with
one and two processes per worker, a paced run, latencies, growth) on a handful of messages, and it writes its JSON
result and markdown table. It checks the harness works, not the speed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
async def test_the_benchmark_runs_every_step_and_writes_its_results(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ})
    output = (await asyncio.wait_for(process.communicate(), 540))[0].decode()
    assert process.returncode == 0, output[-3000:]
    found = json.loads((tmp_path / "latest.json").read_text())
    assert found["smoke"] is True
    assert found["relay"]["per_s"]["runtime"] > 0
    assert found["relay"]["per_s"]["naive_faststream"] > 0
    assert found["intake"]["per_s"] > 0
    assert found["pgbench"]["tps"] > 0
    for replicas in (1, 2):
        run = found[f"lifecycles_x{replicas}"]
        assert run["refund_only"]["tickets"] == 5
        assert run["refund_only"]["per_s"] > 0
        assert max(run["peak_rss_mb"].values()) > 0
    single = found["lifecycles_x1"]
    assert single["return_and_refund"]["tickets"] == 3
    assert single["opened_at_half_rate"]["p99_ms"] > 0
    assert single["alone_p50_ms"] > 0
    paced = single["sustained"]
    assert paced["tickets"] >= 3
    assert paced["completed_per_s"] > 0
    assert paced["first_p50_ms"] > 0
    assert paced["last_p50_ms"] > 0
    grown = found["growth"]["levels"]
    assert grown[0]["tickets_before"] == 0
    assert grown[-1]["tickets_before"] >= 12  # copies of the first burst's tickets
    assert grown[-1]["copied"]["rows_per_table"]["tickets"] > 0
    assert all(level["worker_cpu_ms_per_ticket"] > 0 for level in grown)
    table = (tmp_path / "latest.md").read_text()
    assert "| refund-only lifecycles, 1 process per worker |" in table
    assert "pgbench simple-update (peer c)" in table
