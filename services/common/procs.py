"""Starts and stops worker processes (``aftersales run <worker>``), for the demo and e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

ALL_WORKERS = ("intake", "review", "finance", "warehouse", "erp_sync", "scheduler",
               "payment-channel", "wms", "erp", "marketing", "order-system")


class WorkerProcesses:
    def __init__(self, workers: Iterable[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.workers = list(workers)
        self.log_dir = log_dir
        self.env = {**os.environ, **(env or {})}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, only: Iterable[str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in only or self.workers:
            log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run", name], stdout=log, stderr=subprocess.STDOUT,
                env=self.env, start_new_session=True)

    def kill(self, name: str) -> None:
        """Hard kill, as a crash would: no graceful shutdown, no final commits."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def stop(self, only: Iterable[str] | None = None, timeout: float = 15.0) -> None:
        names = list(only or self.procs)
        for name in names:
            if name in self.procs and self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in names:
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def dead(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
