"""How a rebuild and a what-if are told to the person who ran them (text, or JSON for tools)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .compare import Difference
from .engine import Tally
from .log import RecordedLog
from .whatif import Outcome, WhatIf

SHOWN_PER_CHANGE = 50


@contextmanager
def progress_bar() -> Iterator[Any]:
    """A bar per stage (reading the log, replaying); ``update(stage, done, total)``."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as progress:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update


def reach_lines(log: RecordedLog) -> list[str]:
    if not log.truncated:
        return []
    lines = ["the log no longer reaches back to its start: retention removed the first records of"]
    lines += [f"  {r.topic}[{r.partition}] (it begins at offset {r.first_offset})" for r in log.truncated]
    lines.append("  orders whose first inputs are gone cannot be rebuilt exactly; see README, 'Replay'")
    return lines


def tally_lines(tally: Tally) -> list[str]:
    outcomes = ", ".join(f"{name} {n}" for name, n in sorted(tally.outcomes.items()) if n)
    lines = [f"inputs replayed: {tally.inputs}; messages the workers sent each other: {tally.internal}",
             f"handled: {outcomes}"]
    lines += [f"left out: {n} × {why}" for why, n in tally.left_out.items()]
    return lines


def difference_lines(counts: dict[str, int], differences: list[Difference], limit: int = 200) -> list[str]:
    rows = sum(counts.values())
    if not differences:
        return [f"no differences: {rows} rows in {len(counts)} tables match the live database"]
    lines = [f"{len(differences)} difference(s) over {rows} live rows in {len(counts)} tables:"]
    lines += [f"  {d}" for d in differences[:limit]]
    if len(differences) > limit:
        lines.append(f"  … and {len(differences) - limit} more")
    return lines


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def _outcome(o: Outcome) -> str:
    if o.refused:
        return f"refused {o.refused}"
    flags = [f for f, on in (("auto-approved", o.auto_approved), ("manager", o.manager),
                             ("timed out", o.timed_out), ("waits for a person", o.waits_for_people)) if on]
    return f"{o.status} refund {_money(o.refund_cents)} paid {_money(o.paid_cents)}" + (
        f" ({', '.join(flags)})" if flags else "")


def whatif_lines(report: WhatIf) -> list[str]:
    first, last = report.period
    scope = f"shop {report.shop}" if report.shop else "every shop"
    lines = [f"what-if for {scope}, requests from {first} to {last}: {report.requests} request(s) on "
             f"{report.orders} order(s), replayed under today's policy and with "
             + ", ".join(f"{k}={v}" for k, v in report.policy.items())]
    if report.truncated:
        lines.append("warning: the log no longer reaches back to its start (retention): see README, 'Replay'")
    for change, requests in report.by_change.items():
        lines.append(f"{change}: {len(requests)}")
        for request in requests[:SHOWN_PER_CHANGE]:
            before, after = report.baseline[request], report.changed[request]
            ticket = after.ticket_id or before.ticket_id or "-"
            lines.append(f"  order {before.order_id} request {request} ticket {ticket}: "
                         f"{_outcome(before)}  →  {_outcome(after)}")
        if len(requests) > SHOWN_PER_CHANGE:
            lines.append(f"  … {len(requests) - SHOWN_PER_CHANGE} more in the CSV")
    today, changed = report.totals(report.baseline), report.totals(report.changed)
    lines.append("totals                         today      changed")
    for name, label in (("tickets", "tickets opened"), ("refused", "requests refused"),
                        ("refund_cents", "refunds (tickets)"), ("paid_cents", "paid by the channel"),
                        ("auto_approved", "approved automatically"), ("manager", "sent to a manager"),
                        ("decisions", "decisions people made"), ("waiting_for_people", "now wait for a person")):
        fmt = _money if name.endswith("cents") else str
        lines.append(f"  {label:<27}{fmt(today[name]):>8}  {fmt(changed[name]):>11}")
    refused_today, refused_changed = report.rejected_commands
    lines.append(f"recorded decisions that no longer reach their ticket: {refused_changed - refused_today} "
                 f"(refused {refused_today} today, {refused_changed} changed)")
    dead_today, dead_changed = report.dead_letters
    extra = dead_changed - dead_today
    if extra:
        lines.append("recorded answers that no longer apply (dead letters): "
                     + ", ".join(f"{code} {n}" for code, n in sorted(extra.items())))
    return lines


def whatif_dict(report: WhatIf) -> dict[str, Any]:
    return {"policy": report.policy, "shop": report.shop, "from": str(report.period[0]),
            "to": str(report.period[1]), "requests": report.requests, "orders": report.orders,
            "changes": report.by_change, "totals": {"today": report.totals(report.baseline),
                                                    "changed": report.totals(report.changed)},
            "decisions_refused": {"today": report.rejected_commands[0], "changed": report.rejected_commands[1]},
            "truncated": report.truncated}
