"""Starts and stops worker processes (``aftersales run <worker>``), for the demo, e2e tests, the
chaos run and benchmarks. A worker may run as several replicas (``finance``, ``finance.2``, …),
each its own process and group member, as it would in production."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from .settings import SERVICE_SASL_MECHANISM, Settings, read_kafka_passwords

WORKERS = ("intake", "review", "finance", "warehouse", "erp_sync", "scheduler", "dead_letters", "monitoring",
           "notifications", "settlement")
SIMULATORS = ("payment-channel", "wms", "erp", "marketing", "order-system")
ALL_WORKERS = WORKERS + SIMULATORS
# each process's command name (``aftersales run NAME``) and the module that builds it
MODULES = {
    "intake": "services.intake.app",
    "review": "services.review.app",
    "finance": "services.finance.app",
    "warehouse": "services.warehouse.app",
    "erp_sync": "services.erp_sync.app",
    "scheduler": "services.scheduler.app",
    "dead_letters": "services.dead_letters.app",
    "monitoring": "services.monitoring.app",
    "notifications": "services.notifications.app",
    "settlement": "services.settlement.app",
    "backoffice": "services.backoffice.app",
    "payment-channel": "services.simulators.payment",
    "wms": "services.simulators.wms",
    "erp": "services.simulators.erp",
    "marketing": "services.simulators.marketing",
    "order-system": "services.simulators.order_system",
}


def free_port(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A port nothing listens on now, for a process about to start, taken below the kernel's
    ephemeral range: the kernel's own pick comes from that range, where the Kafka and PostgreSQL
    clients of thirty processes take their outgoing ports, and one of them took such a port before
    its worker could bind it (the worker then exits: seen once in a CI run). Not one of ``taken``:
    the ports already handed to processes that have not bound them yet (thirty random picks from
    12,000 ports collide in about one start in thirty; seen once in a full run)."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(min(20_000, low - 1_000), low - 1)
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def worker_of(process: str) -> str:
    """``finance.2`` → ``finance``."""
    return process.split(".", 1)[0]


PRINCIPAL = {"backoffice": "back-office"}  # the command's name → the name the topic catalogue knows


def principal_of(process: str) -> str:
    """The Kafka principal a worker process signs in as (its service's name in the catalogue)."""
    worker = worker_of(process)
    return PRINCIPAL.get(worker, worker)


class WorkerProcesses:
    def __init__(self, workers: Iterable[str], log_dir: Path, env: dict[str, str] | None = None,
                 replicas: int = 1, metrics: bool = False) -> None:
        """``replicas`` processes of each of the seven workers; simulators run once. With
        ``metrics``, each process serves /metrics, /healthz and /readyz on a free port of its own
        (``metrics_ports``), kept across restarts."""
        self.log_dir = log_dir
        self.env = {**os.environ, **(env or {})}
        self.names: list[str] = []
        for worker in workers:
            copies = replicas if worker in WORKERS else 1
            self.names += [worker] + [f"{worker}.{n}" for n in range(2, copies + 1)]
        self.metrics_ports: dict[str, int] = {}
        for name in self.names if metrics else ():
            self.metrics_ports[name] = free_port(set(self.metrics_ports.values()))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.exits: dict[str, int] = {}  # processes that ended without being told to

    @property
    def workers(self) -> list[str]:
        return list(self.names)

    def consumer_groups(self, settings: Settings) -> list[str]:
        """The consumer group of every worker these processes run (the replicas of one share it)."""
        return sorted({settings.group(worker_of(name)) for name in self.names})

    def start(self, only: Iterable[str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in only or self.names:
            log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
            self.procs[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and worker names
                [sys.executable, "-m", "services.cli", "run", worker_of(name)], stdout=log,
                stderr=subprocess.STDOUT, env={**self.env, **self._credentials(name), **self._metrics(name)},
                start_new_session=True)

    def _metrics(self, name: str) -> dict[str, str]:
        port = self.metrics_ports.get(name)
        return {} if port is None else {"AFTERSALES_METRICS_PORT": str(port)}

    def _credentials(self, name: str) -> dict[str, str]:
        """Each process signs in to Kafka as its own service (never as the admin that started it),
        with the password ``aftersales init`` keeps in the credentials file."""
        path = self.env.get("AFTERSALES_KAFKA_CREDENTIALS_FILE")
        if self.env.get("AFTERSALES_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT") == "PLAINTEXT" or not path:
            return {}
        principal = principal_of(name)
        password = read_kafka_passwords(path)[principal]
        return {"AFTERSALES_KAFKA_USERNAME": principal, "AFTERSALES_KAFKA_PASSWORD": password,
                "AFTERSALES_KAFKA_SASL_MECHANISM": SERVICE_SASL_MECHANISM}

    async def ready(self, timeout: float = 120.0) -> None:
        """Waits until every process with a metrics port answers /readyz (its database, broker and
        group assignment are there): whoever drives the processes starts once they consume, not
        while a slow start on a busy machine still holds the first messages back."""
        deadline = time.monotonic() + timeout
        waiting = dict(self.metrics_ports)
        async with httpx.AsyncClient(timeout=2) as http:
            while waiting:
                for name, port in list(waiting.items()):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            del waiting[name]
                if waiting and time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(sorted(waiting))}")
                if waiting:
                    await asyncio.sleep(0.2)

    def kill(self, name: str) -> None:
        """Hard kill, as a crash would: no graceful shutdown, no final commits."""
        proc = self.procs.pop(name)
        if proc.poll() is not None:  # it had already ended by itself: that is worth reporting
            self.exits[name] = proc.returncode
        proc.kill()
        proc.wait(10)

    def restart(self, name: str) -> None:
        self.start([name])

    def freeze(self, name: str) -> None:
        """SIGSTOP: the process holds its partitions but does nothing (a stalled machine)."""
        self.procs[name].send_signal(signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGCONT)

    def stop(self, only: Iterable[str] | None = None, timeout: float = 15.0) -> dict[str, int]:
        """SIGTERM, then SIGKILL after ``timeout``; returns each stopped process's exit code."""
        names = list(only or self.procs)
        for name in names:
            if name in self.procs and self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGCONT)
                self.procs[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int] = {}
        for name in names:
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            try:
                codes[name] = proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait(5)
        return codes

    def dead(self) -> dict[str, int]:
        """Processes that exited on their own (never killed or stopped by us)."""
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.exits[name] = proc.returncode
        return {n: code for n, code in self.exits.items()}

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
