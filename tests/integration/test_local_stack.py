"""deploy/local/up.sh starts PostgreSQL for a checkout the `postgres` user cannot enter (a clone
inside a 0700 folder), keeping the data where that user can reach it and saying so."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("su") is None,
    reason="up.sh installs and starts PostgreSQL as root, like on CI; this run is not root")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "deploy/local" / name), *args], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


def test_postgres_starts_for_a_checkout_inside_a_closed_folder_and_says_where_its_data_is():
    closed = Path(tempfile.mkdtemp(prefix="closed-"))  # 0700, owned by root
    state = closed / "checkout" / ".local"
    port = _free_port()
    env = {**os.environ, "AFTERSALES_STATE_DIR": str(state), "PG_PORT": str(port)}
    up = _script("up.sh", env, "postgres")
    fallback = None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "the postgres user cannot enter" in up.stdout
        fallback = Path(next(line for line in up.stdout.splitlines() if "initdb " in line).split("initdb ")[1])
        assert (fallback / "PG_VERSION").exists()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert f"postgres: up on 127.0.0.1:{port}" in _script("status.sh", env).stdout
    finally:
        down = _script("down.sh", env, "postgres")
        if fallback is not None:
            shutil.rmtree(fallback.parent, ignore_errors=True)
        shutil.rmtree(closed, ignore_errors=True)
    assert "postgres stopped" in down.stdout
