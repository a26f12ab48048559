"""The benchmark command (issue 14): every figure beside its peers, measured in the same run.

  relay      the runtime relay (inbox, one transaction per fetched batch, outbox) against a raw
             aiokafka relay, per message and batched, and against the same delivery rules as a
             per-message FastStream subscriber with FastStream's ack (``bench/throughput.py``)
  intake     the intake worker projecting OrderPlaced facts (each order paid afterwards, untimed)
  pgbench    PostgreSQL's own simple-update tps on the same database (pgbench -N)
  lifecycles whole refund-only and return-and-refund tickets through every worker and simulator
             process (every hop a real message and a real transaction), with one and with two
             processes per worker; per-process CPU and peak RSS
  sustained  refund-only requests paced at the burst's rate for 60 s, each to its refund
  growth     the same burst on a scratch database holding ~0, 10k and 100k tickets (``bench/growth.py``)
  latency    request published -> TicketOpened consumed at half the measured refund-only rate
             (p50/p95/p99), and one ticket at a time, request -> refunded
  profile    a py-spy flame graph of the busiest worker during a burst (full runs only)

Each run writes ``bench/results/<stamp>.json`` and ``bench/results/<stamp>.md`` (and ``latest.*``).
``--smoke`` runs every step with a handful of messages: it checks the harness, not the speed (the
test command runs it). Needs the stack: bash deploy/local/up.sh && source .local/env.

Usage: python -m bench.run [--smoke] [--tickets N] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench import throughput
from bench.growth import growth
from contracts import CATALOGUE
from contracts import decisions as d
from services.actors import RETURN_DESK, Line, World, order_id, projection_probe
from services.common.bus import Bus, Watcher
from services.common.db import make_engine, make_session_factory
from services.common.kafka import ensure_topics
from services.common.logging import configure_logging
from services.common.procs import ALL_WORKERS, WorkerProcesses
from services.common.settings import Settings
from services.harness import wait_for_no_lag

SHOP = "shop-bench"
ENV = {"AFTERSALES_SHOP_POLICIES": json.dumps({SHOP: {
           "finance_auto_approve_refund_only": True, "finance_auto_approve_below_cents": 10**9}}),
       "AFTERSALES_RETURN_ADDRESSES": RETURN_DESK, "AFTERSALES_LOG_LEVEL": "WARNING"}
# the outbox relays poll at the production default (0.5 s): each is woken by its own commit, so a
# shorter poll only adds idle queries (measured: at 0.05 s each idle process burned ~7 CPU-s in a
# 100 s burst, at 0.5 s ~2)
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"refund_only_per_s": 150, "return_and_refund_per_s": 60, "relay_vs_raw_batched": 0.5,
           "intake_per_s": 2_500, "opened_p99_ms": 50, "alone_p50_ms": 100, "vs_naive": 5, "rss_mb": 150}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


# ---------------------------------------------------------------- relay and intake peers
async def relay(settings: Settings, n: int) -> dict[str, Any]:
    raw = await throughput.raw_relay(settings, n)
    raw_batched = await throughput.raw_batched_relay(settings, n)
    runtime = await throughput.runtime_relay(settings, n)
    naive = await throughput.faststream_per_message(settings, n)
    per_s = {name: round(n / secs, 1) for name, secs in (("raw_per_message", raw), ("raw_batched", raw_batched),
                                                          ("runtime", runtime), ("naive_faststream", naive))}
    return {"messages": n, "per_s": per_s,
            "runtime_vs_raw_batched": round(per_s["runtime"] / per_s["raw_batched"], 3),
            "runtime_vs_naive": round(per_s["runtime"] / per_s["naive_faststream"], 2)}


async def intake(settings: Settings, n: int) -> dict[str, Any]:
    return {"facts": n, "per_s": round(n / await throughput.intake_projection(settings, n), 1)}


def pgbench(settings: Settings, seconds: int) -> dict[str, Any]:
    """PostgreSQL's own simple-update transactions on the same server, in tables pgbench creates
    and drops again (``pgbench_*``: not the project's)."""
    program = shutil.which("pgbench")
    if program is None:
        return {"skipped": "pgbench is not installed (Debian: postgresql-contrib)"}
    url = urlparse(settings.database_url.replace("+asyncpg", ""))
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    target = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "",
              (url.path or "/").lstrip("/")]
    subprocess.run([program, "-i", "-q", "-s", "1", *target], env=env, check=True, capture_output=True)  # noqa: S603
    try:
        done = subprocess.run([program, "-N", "-c", "2", "-j", "2", "-T", str(seconds), *target],  # noqa: S603
                              env=env, check=True, capture_output=True, text=True)
    finally:
        subprocess.run([program, "-i", "-I", "d", *target], env=env, check=False, capture_output=True)  # noqa: S603
    found = re.search(r"tps = ([0-9.]+)", done.stdout)
    return {"clients": 2, "seconds": seconds, "tps": round(float(found[1]), 1) if found else None}


# ---------------------------------------------------------------- whole lifecycles
def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return round(int(found[1]) / 1024, 1) if found else 0.0


def _usage(procs: WorkerProcesses) -> dict[str, tuple[float, float]]:
    return {name: (_cpu_seconds(p.pid), _peak_rss_mb(p.pid)) for name, p in procs.procs.items() if p.poll() is None}


Settle = Callable[[], Awaitable[Any]]


async def _nothing() -> None:
    return None


async def _orders(world: World, n: int, state: str, settle: Settle = _nothing) -> list[str]:
    """Places ``n`` orders in chunks (each waits until intake projected it), each by a buyer of its
    own: a return wave comes from many buyers. (Until 2026-12-06 every order was buyer-1's, so
    every ticket also tripped the serial-returner rule, a BuyerFlagged more per ticket, and
    monitoring counted that buyer's ever longer history: 20,355 tickets on the long-lived stack.)"""
    orders: list[str] = []
    while len(orders) < n:
        chunk = [order_id() for _ in range(min(50, n - len(orders)))]
        orders += await asyncio.gather(*(world.place_order([Line("SKU-B", 2, 5_000, 9_000)], shop=SHOP, state=state,
                                                           oid=oid, buyer=buyer_of(oid)) for oid in chunk))
    await settle()  # every worker has read the new orders' facts: the step measures tickets alone
    return orders


def buyer_of(oid: str) -> str:
    return f"buyer-{oid}"


async def caught_up(settings: Settings, procs: WorkerProcesses) -> dict[str, int]:
    """Waits until every worker has committed everything on its topics: the order facts a step
    has just placed (finance, settlement, monitoring and the order system read them too), or an
    earlier step's (the intake step leaves 6,000), are then not counted as the tickets' cost.
    Returns the lag left after two minutes (none, normally)."""
    left = await wait_for_no_lag(settings, procs.consumer_groups(settings), 120)
    return {group: n for group, n in left.items() if n}


async def refunds_of(world: World, orders: list[str], lines: list[tuple[int, int]],
                     timeout: float) -> tuple[float, list[float]]:
    """A refund-only request on each order at once, then each ticket waited for until COMPLETED:
    the seconds it all took, and each request's latency to its refund (bench/flows.py uses it too)."""
    sent: dict[str, float] = {}
    started = time.monotonic()
    for oid in orders:
        await world.request(oid, "REFUND_ONLY", lines, buyer=buyer_of(oid))
        sent[oid] = time.monotonic()

    async def flow(oid: str) -> float:
        ticket = await world.opened(oid, timeout=timeout)
        await world.status(ticket, "COMPLETED", timeout=timeout)
        return time.monotonic() - sent[oid]
    latencies = await asyncio.gather(*(flow(o) for o in orders))
    return time.monotonic() - started, list(latencies)


async def return_burst(world: World, n: int, settle: Settle) -> tuple[float, list[float]]:
    """Return and refund: the buyer asks, ops approve, the buyer ships back, the warehouse
    receives and inspects, finance approves by policy, the channel refunds."""
    orders = await _orders(world, n, "COMPLETED", settle)
    started = time.monotonic()

    async def flow(oid: str) -> float:
        asked = time.monotonic()
        await world.request(oid, "RETURN_AND_REFUND", [(1, 1)], buyer=buyer_of(oid))
        ticket = await world.opened(oid, timeout=600)
        await world.decide(d.ApproveTicket, ticket, "ops", "ops-bench")
        await world.ship_back(ticket, buyer=buyer_of(oid))
        await world.status(ticket, "COMPLETED", timeout=600)
        return time.monotonic() - asked
    latencies = await asyncio.gather(*(flow(o) for o in orders))
    return time.monotonic() - started, list(latencies)


async def sustained(world: World, rate: float, seconds: float, settle: Settle) -> dict[str, Any]:
    """Refund-only requests paced at ``rate`` per second for ``seconds``, each followed to its
    refund: a burst says how fast a backlog drains, this says whether the rate holds. If the
    workers keep up, the last requests wait as long as the first; if not, the backlog (and each
    request's wait) grows for the whole window."""
    orders = await _orders(world, max(3, int(rate * seconds)), "PAID", settle)
    started = time.monotonic()

    async def one(oid: str, due: float) -> tuple[float, float, float]:
        await asyncio.sleep(max(0.0, started + due - time.monotonic()))
        asked = time.monotonic()
        await world.request(oid, "REFUND_ONLY", [(1, 2)], buyer=buyer_of(oid))
        await world.status(await world.opened(oid, timeout=600), "COMPLETED", timeout=600)
        done = time.monotonic()
        return asked - started, done - asked, done - started
    runs = await asyncio.gather(*(one(oid, i / rate) for i, oid in enumerate(orders)))
    waits = [wait for _, wait, _ in runs]
    window = max(1.0, seconds / 6)  # the first and the last sixth of the requests (10 s of 60)
    first = [wait for asked, wait, _ in runs if asked < window]
    last = [wait for asked, wait, _ in runs if asked >= seconds - window]
    finished = max(done for _, _, done in runs)
    return {"requested_per_s": round(rate, 1), "seconds": seconds, "tickets": len(runs),
            "completed_per_s": round(len(runs) / finished, 1), "all_done_after_s": round(finished, 1),
            "p50_ms": round(statistics.median(waits) * 1000), "p99_ms": round(percentile(waits, 0.99) * 1000),
            "first_p50_ms": round(statistics.median(first or waits) * 1000),
            "last_p50_ms": round(statistics.median(last or waits) * 1000)}


async def opened_latency(world: World, rate: float, seconds: float, settle: Settle) -> list[float]:
    """Requests paced at ``rate`` per second: publish -> TicketOpened seen, each."""
    count = max(3, int(rate * seconds))
    orders = await _orders(world, count, "PAID", settle)
    waits = []
    started = time.monotonic()
    for i, oid in enumerate(orders):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))

        async def one(oid: str = oid) -> float:
            asked = time.monotonic()
            await world.request(oid, "REFUND_ONLY", [(1, 1)], buyer=buyer_of(oid))
            await world.opened(oid, timeout=120)
            return time.monotonic() - asked
        waits.append(asyncio.create_task(one()))
    return list(await asyncio.gather(*waits))


async def alone(world: World, samples: int, settle: Settle = _nothing) -> list[float]:
    out = []
    for oid in await _orders(world, samples, "PAID", settle):
        asked = time.monotonic()
        await world.request(oid, "REFUND_ONLY", [(1, 1)], buyer=buyer_of(oid))
        await world.status(await world.opened(oid, timeout=60), "COMPLETED", timeout=60)
        out.append(time.monotonic() - asked)
    return out


def _flows(n: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    return {"tickets": n, "seconds": round(elapsed, 2), "per_s": round(n / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000), "p95_ms": round(percentile(latencies, 0.95) * 1000),
            "p99_ms": round(percentile(latencies, 0.99) * 1000)}


async def lifecycles(settings: Settings, sizes: dict[str, int], replicas: int, log_dir: Path,
                     profile_to: Path | None) -> dict[str, Any]:
    procs = WorkerProcesses(ALL_WORKERS, log_dir / f"x{replicas}", env=ENV, replicas=replicas, metrics=True)
    procs.start()
    engine = make_engine(settings)
    result: dict[str, Any] = {"replicas": replicas, "processes": len(procs.procs)}
    try:
        await procs.ready()
        async with Bus(settings, "bench") as bus, Watcher(settings, [t.name for t in CATALOGUE]) as watcher:
            world = World(bus, watcher, projection_probe(make_session_factory(engine)))
            await alone(world, 1)  # warm: every process has joined, connected and compiled its queries

            async def settle() -> None:
                left = await caught_up(settings, procs)
                if left:
                    result.setdefault("lag_left_before_a_step", []).append(left)
            # refund only before shipment, within 30 minutes of payment: intercepted and approved by
            # the system, finance approves by the shop's policy, the channel refunds (7 hops)
            orders = await _orders(world, sizes["refund_only"], "PAID", settle)
            before = _usage(procs)
            profiler = _profile(procs, profile_to, seconds=10) if profile_to else None
            elapsed, latencies = await refunds_of(world, orders, [(1, 2)], timeout=600)
            result["refund_only"] = _flows(sizes["refund_only"], elapsed, latencies)
            after = _usage(procs)
            result["cpu_seconds"] = {name: round(after[name][0] - before[name][0], 2) for name in after
                                     if name in before}
            if profiler is not None:
                result["profile"] = await asyncio.to_thread(profiler)
            if replicas == 1:  # the rest of the figures once, on the production-like layout
                elapsed, latencies = await return_burst(world, sizes["return_and_refund"], settle)
                result["return_and_refund"] = _flows(sizes["return_and_refund"], elapsed, latencies)
                result["sustained"] = await sustained(world, result["refund_only"]["per_s"], sizes["sustained_seconds"],
                                                      settle)
                rate = max(1.0, result["refund_only"]["per_s"] / 2)
                opened = await opened_latency(world, rate, sizes["latency_seconds"], settle)
                result["opened_at_half_rate"] = {
                    "rate_per_s": rate, "requests": len(opened),
                    "p50_ms": round(statistics.median(opened) * 1000, 1),
                    "p95_ms": round(percentile(opened, 0.95) * 1000, 1),
                    "p99_ms": round(percentile(opened, 0.99) * 1000, 1)}
                one = await alone(world, sizes["alone"], settle)
                result["alone_p50_ms"] = round(statistics.median(one) * 1000, 1)
            result["peak_rss_mb"] = {name: rss for name, (_, rss) in _usage(procs).items()}
    finally:
        procs.stop()
        await engine.dispose()
    return result


BUSIEST = "finance"  # the most CPU seconds in the refund-only burst (cpu_seconds, measured 2026-12-05)


def _profile(procs: WorkerProcesses, out: Path, seconds: int) -> Callable[[], dict[str, Any]] | None:
    """Starts py-spy on the busiest worker's process; returns a function that waits for it and
    says where the flame graph is and where the time went (``hot_frames``)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    target = procs.procs[BUSIEST].pid
    command = [spy, "record", "--pid", str(target), "--duration", str(seconds), "--rate", "200",
               "--format", "flamegraph", "--output", str(out), "--nonblocking"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: S603 - ours
                               text=True)

    def finish() -> dict[str, Any]:
        output = process.communicate(timeout=seconds + 60)[0]
        found = re.search(r"Samples: (\d+)", output or "")
        return {"worker": BUSIEST, "flame_graph": str(out.relative_to(RESULTS.parent.parent))
                if out.is_relative_to(RESULTS.parent.parent) else str(out),
                "samples": int(found[1]) if found else 0, "exit": process.returncode,
                "hot_frames": hot_frames(out) if out.exists() else []}
    return finish


_FRAME = re.compile(r"<title>(.*?) \(([\d,]+) samples?, ([\d.]+)%\)</title>")
_PLUMBING = ("asyncio/", "typer/", "runpy", "services/cli.py", "faststream/", "fast_depends/", "run_worker")


def hot_frames(svg: Path, top: int = 12) -> list[str]:
    """Where the time went: the frames with the most samples below the event loop and the
    framework's plumbing (inclusive share of the process's samples), read from the flame graph."""
    found: dict[str, float] = {}
    for name, _, share in _FRAME.findall(svg.read_text()):
        name = html.unescape(name)
        if name != "all" and not any(part in name for part in _PLUMBING):
            found[name] = max(found.get(name, 0.0), float(share))
    return [f"{share:5.1f}% {name}" for name, share in sorted(found.items(), key=lambda kv: -kv[1])[:top]]


# ---------------------------------------------------------------- the run
def markdown(results: dict[str, Any]) -> str:
    relay_, intake_, pg, one, two = (results["relay"], results["intake"], results["pgbench"],
                                     results["lifecycles_x1"], results["lifecycles_x2"])
    rows = [
        ("refund-only lifecycles, 1 process per worker", f"{one['refund_only']['per_s']} tickets/s",
         f"≥ {TARGETS['refund_only_per_s']}", f"{one['refund_only']['per_s'] / TARGETS['refund_only_per_s']:.2f}×"),
        ("refund-only lifecycles, 2 processes per worker", f"{two['refund_only']['per_s']} tickets/s", "",
         f"{two['refund_only']['per_s'] / one['refund_only']['per_s']:.2f}× of 1 process"),
        ("return-and-refund lifecycles", f"{one['return_and_refund']['per_s']} tickets/s",
         f"≥ {TARGETS['return_and_refund_per_s']}",
         f"{one['return_and_refund']['per_s'] / TARGETS['return_and_refund_per_s']:.2f}×"),
        ("refund-only paced at the burst's rate for "
         f"{one['sustained']['seconds']} s: completed", f"{one['sustained']['completed_per_s']} tickets/s",
         f"≥ {TARGETS['refund_only_per_s']}",
         f"asked {one['sustained']['requested_per_s']}/s; request → refunded p50 "
         f"{one['sustained']['first_p50_ms']} ms in the first sixth, {one['sustained']['last_p50_ms']} ms in the last"),
        ("runtime relay", f"{relay_['per_s']['runtime']} msg/s", "", ""),
        ("raw aiokafka relay, batched (peer a)", f"{relay_['per_s']['raw_batched']} msg/s", "",
         f"runtime {relay_['runtime_vs_raw_batched']}× (target ≥ {TARGETS['relay_vs_raw_batched']})"),
        ("raw aiokafka relay, per message (peer a)", f"{relay_['per_s']['raw_per_message']} msg/s", "", ""),
        ("naive FastStream worker, tx + ack per message (peer b)", f"{relay_['per_s']['naive_faststream']} msg/s",
         "", f"runtime {relay_['runtime_vs_naive']}× (target ≥ {TARGETS['vs_naive']})"),
        ("pgbench simple-update (peer c)", f"{pg.get('tps')} tps", "", ""),
        ("intake projection", f"{intake_['per_s']} facts/s", f"≥ {TARGETS['intake_per_s']}",
         f"{intake_['per_s'] / TARGETS['intake_per_s']:.2f}×"),
        ("request → TicketOpened p99 at half rate", f"{one['opened_at_half_rate']['p99_ms']} ms",
         f"≤ {TARGETS['opened_p99_ms']}", ""),
        ("one at a time, request → refunded p50", f"{one['alone_p50_ms']} ms", f"≤ {TARGETS['alone_p50_ms']}", ""),
        ("peak RSS, largest worker process", f"{max(one['peak_rss_mb'].values())} MB", f"≤ {TARGETS['rss_mb']}", ""),
    ]
    lines = [f"# Benchmark {results['started_at']} ({'smoke' if results['smoke'] else 'full'})", "",
             f"{results['machine']}", "", "| figure | measured | target | ratio |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {e} |" for a, b, c, e in rows]
    grown = results["growth"]
    lines += ["", "Growth (bench/growth.py: a scratch database, history copied from real tickets), "
              f"a burst of {grown['levels'][0]['burst']} refund-only tickets at each size:", "",
              "| tickets already held | tickets/s | worker CPU ms per ticket | PostgreSQL CPU ms per ticket |",
              "|---|---|---|---|"]
    lines += [f"| {level['tickets_before']:,} | {level['per_s']} | {level['worker_cpu_ms_per_ticket']} | "
              f"{level['postgres_cpu_ms_per_ticket']} |" for level in grown["levels"]]
    ratio = grown.get("largest_vs_before", {})
    lines += ["", f"Largest size against the one before it: tickets/s {ratio.get('per_s')}×, worker CPU per ticket "
              f"{ratio.get('worker_cpu_ms_per_ticket')}×, PostgreSQL CPU per ticket "
              f"{ratio.get('postgres_cpu_ms_per_ticket')}× (target: per-ticket cost within 20 %, 0.8–1.2×)"]
    cpu = one.get("cpu_seconds", {})
    if cpu:
        lines += ["", "CPU seconds per process during the refund-only burst (1 process per worker): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))]
    if one.get("profile"):
        lines += ["", f"Flame graph of {one['profile']['worker']}: `{one['profile']['flame_graph']}` "
                  f"({one['profile']['samples']} samples); where its time went (inclusive):", ""]
        lines += [f"    {frame}" for frame in one["profile"]["hot_frames"]]
    return "\n".join(lines) + "\n"


async def run(smoke: bool, tickets: int, out: Path) -> dict[str, Any]:
    configure_logging("WARNING")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # SASL/PLAIN on loopback: its warning is noise here
    settings = Settings(log_level="WARNING", outbox_poll_seconds=0.05)
    await ensure_topics(settings)
    sizes = ({"relay": 50, "intake": 50, "pgbench_seconds": 1, "refund_only": 5, "return_and_refund": 3,
              "latency_seconds": 2, "alone": 2, "sustained_seconds": 2,
              "growth_burst": 3} if smoke else
             {"relay": 3_000, "intake": 3_000, "pgbench_seconds": 10, "refund_only": tickets,
              "return_and_refund": max(10, tickets // 2), "latency_seconds": 20, "alone": 10, "sustained_seconds": 60,
              "growth_burst": 300})
    history = [12] if smoke else [10_000, 100_000]  # tickets held before each growth burst after the first
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {"started_at": stamp, "smoke": smoke, "sizes": sizes,
                               "machine": f"{os.cpu_count()} cores; Kafka, PostgreSQL and Redis on the same box"}
    log_dir = Path(".local/logs/bench")
    steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("relay", lambda: relay(settings, sizes["relay"])),
        ("intake", lambda: intake(settings, sizes["intake"])),
        ("pgbench", lambda: asyncio.to_thread(pgbench, settings, sizes["pgbench_seconds"])),
        ("lifecycles_x1", lambda: lifecycles(settings, sizes, 1, log_dir,
                                             None if smoke else out / f"{stamp}-flame-{BUSIEST}.svg")),
        ("lifecycles_x2", lambda: lifecycles(settings, sizes, 2, log_dir, None)),
        ("growth", lambda: growth(settings, sizes["growth_burst"], history, log_dir, ENV)),
    ]
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, transient=not sys.stdout.isatty()) as progress:
        bar = progress.add_task("benchmark", total=len(steps))
        for name, step in steps:
            progress.update(bar, description=f"benchmark: {name}")
            results[name] = await step()
            progress.advance(bar)
    return results


def save(results: dict[str, Any], out: Path) -> str:
    """The JSON result and the markdown table, under the run's stamp and as ``latest``."""
    table = markdown(results)
    for name in (results["started_at"], "latest"):
        (out / f"{name}.json").write_text(json.dumps(results, indent=2))
        (out / f"{name}.md").write_text(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a handful of messages: checks the harness only")
    parser.add_argument("--tickets", type=int, default=600, help="refund-only tickets in the burst (full run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(save(asyncio.run(run(args.smoke, args.tickets, args.out)), args.out))


if __name__ == "__main__":
    main()
