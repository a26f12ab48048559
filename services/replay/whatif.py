"""What-if: the same period's recorded inputs replayed under today's policy and under a changed
one, each into a scratch database, and the requests whose outcome changes.

Both runs start from the log alone, so the only difference between them is the policy (the live
database's own history, with its policy changes and its timing, is not the baseline). What people
decided is replayed as recorded: a decision on a ticket that no longer waits for it is refused
and counted, never applied elsewhere; a ticket that now waits for a person who never decided it
stays waiting, and is counted as a decision now needed. Recorded answers to things that no longer
happen (a payment result for a refund that now waits for a manager) are counted as dead letters.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from contracts.aftersales import RequestAfterSales
from contracts.orders import OrderPlaced
from contracts.topics import REQUESTS
from services.common.db import make_engine
from services.common.settings import Settings
from services.common.tables import OutboxRow, RefundRow, TicketAuditRow, TicketRow
from services.domain.model import Role

from .log import Recorded, RecordedLog, read_inputs
from .rebuild import replay_into, replay_settings, scratch_database

PEOPLE = {Role.OPS.value, Role.FINANCE.value, Role.MANAGER.value}
WAITING_FOR_PEOPLE = {"PENDING_REVIEW", "PENDING_MANAGER", "PENDING_REFUND", "INTERVENTION", "REFUND_FAILED"}
TIMEOUTS = {"timeout", "auto_confirm"}


@dataclass(frozen=True)
class Outcome:
    """What became of one buyer request."""

    request_id: str
    order_id: str
    ticket_id: str = ""
    refused: str = ""  # the refusal code; "" when a ticket opened
    status: str = ""
    refund_cents: int = 0  # what the ticket would refund
    paid_cents: int = 0  # what the payment channel paid
    auto_approved: bool = False
    manager: bool = False  # went to a manager
    timed_out: bool = False
    decisions: int = 0  # decisions people made on it (applied)
    waits_for_people: bool = False


CHANGES: dict[str, Callable[[Outcome, Outcome], bool]] = {
    "refused → opened": lambda a, b: bool(a.refused) and not b.refused,
    "opened → refused": lambda a, b: not a.refused and bool(b.refused),
    "auto-approved": lambda a, b: a.auto_approved != b.auto_approved,
    "escalated to a manager": lambda a, b: a.manager != b.manager,
    "timed out": lambda a, b: a.timed_out != b.timed_out,
    "refund amount": lambda a, b: (a.refund_cents, a.paid_cents) != (b.refund_cents, b.paid_cents),
    "final status": lambda a, b: a.status != b.status,
}


@dataclass
class WhatIf:
    policy: dict[str, Any]
    shop: str | None
    period: tuple[date, date]
    requests: int
    orders: int
    baseline: dict[str, Outcome]
    changed: dict[str, Outcome]
    by_change: dict[str, list[str]] = field(default_factory=dict)  # change → request ids
    rejected_commands: tuple[int, int] = (0, 0)  # recorded decisions refused: today, changed
    dead_letters: tuple[Counter[str], Counter[str]] = field(default_factory=lambda: (Counter(), Counter()))
    truncated: bool = False

    def changed_requests(self) -> list[str]:
        return sorted({r for ids in self.by_change.values() for r in ids})

    def totals(self, outcomes: dict[str, Outcome]) -> dict[str, int]:
        values = outcomes.values()
        return {"tickets": sum(1 for o in values if not o.refused),
                "refused": sum(1 for o in values if o.refused),
                "refund_cents": sum(o.refund_cents for o in values),
                "paid_cents": sum(o.paid_cents for o in values),
                "decisions": sum(o.decisions for o in values),
                "waiting_for_people": sum(1 for o in values if o.waits_for_people),
                "manager": sum(1 for o in values if o.manager),
                "auto_approved": sum(1 for o in values if o.auto_approved)}

    def write_csv(self, path: Path) -> int:
        rows = self.changed_requests()
        with path.open("w", newline="") as file:
            writer = csv.writer(file)
            fields = [f for f in Outcome.__dataclass_fields__ if f not in ("request_id", "order_id")]
            writer.writerow(["request_id", "order_id", "changes", *(f"{f}_today" for f in fields),
                             *(f"{f}_changed" for f in fields)])
            for request in rows:
                before, after = asdict(self.baseline[request]), asdict(self.changed[request])
                changes = [name for name, ids in self.by_change.items() if request in ids]
                writer.writerow([request, before["order_id"], "; ".join(changes), *(before[f] for f in fields),
                                 *(after[f] for f in fields)])
        return len(rows)


def _payload(record: Recorded) -> dict[str, Any]:
    payload = json.loads(record.value).get("payload", {})
    return payload if isinstance(payload, dict) else {}


def in_period(log: RecordedLog, start: date, end: date, shop: str | None, zone: ZoneInfo
              ) -> tuple[dict[str, str], set[str]]:
    """The requests made in the period (request id → order id), of one shop's orders when asked,
    and the orders to replay."""
    shops = {r.key: _payload(r).get("shop_id") for r in log.inputs if r.type == OrderPlaced.event_type}
    requests: dict[str, str] = {}
    for record in log.inputs:
        if record.topic != REQUESTS.name or record.type != RequestAfterSales.event_type:
            continue
        if not start <= record.at.astimezone(zone).date() <= end:
            continue
        if shop is not None and shops.get(record.key) != shop:
            continue
        request_id = _payload(record).get("request_id")
        if isinstance(request_id, str):
            requests[request_id] = record.key
    return requests, set(requests.values())


async def outcomes(settings: Settings, database_url: str, requests: dict[str, str]
                   ) -> tuple[dict[str, Outcome], int, Counter[str]]:
    """Each request's outcome in a replayed database, the recorded decisions it refused, and its
    dead letters by reason (the project's engine: no SQL parameters in an error's text)."""
    engine = make_engine(settings.with_changes(database_url=database_url))
    try:
        async with engine.connect() as connection:
            tickets = (await connection.execute(select(
                TicketRow.ticket_id, TicketRow.request_id, TicketRow.status, TicketRow.refund_total_cents
            ).where(TicketRow.order_id.in_(set(requests.values()))))).all()
            audit = (await connection.execute(select(
                TicketAuditRow.ticket_id, TicketAuditRow.actor_role, TicketAuditRow.action, TicketAuditRow.to_status
            ).where(TicketAuditRow.ticket_id.in_([t.ticket_id for t in tickets])))).all()
            paid = dict((await connection.execute(select(RefundRow.ticket_id, RefundRow.amount_cents).where(
                RefundRow.order_id.in_(set(requests.values())), RefundRow.status == "SUCCEEDED"))).all())
            sent = (await connection.execute(select(OutboxRow.type, OutboxRow.value).where(
                OutboxRow.type.in_(["RequestRejected", "CommandRejected", "DeadLetter"])))).all()
    finally:
        await engine.dispose()
    refusals: dict[str, str] = {}
    commands_refused = 0
    dead_letters: Counter[str] = Counter()
    for type_name, value in sent:
        payload = json.loads(value)["payload"]
        if type_name == "RequestRejected" and payload.get("request_id") in requests:
            refusals[payload["request_id"]] = payload["code"]
        elif type_name == "CommandRejected" and payload.get("order_id") in requests.values():
            commands_refused += 1
        elif type_name == "DeadLetter" and payload.get("original_key") in requests.values():
            dead_letters[payload.get("reason_code", "")] += 1
    trail: dict[str, list[Any]] = {}
    for entry in audit:
        trail.setdefault(entry.ticket_id, []).append(entry)
    found: dict[str, Outcome] = {}
    for ticket in tickets:
        request = str(ticket.request_id)
        if request not in requests:
            continue
        entries = trail.get(ticket.ticket_id, [])
        found[request] = Outcome(
            request, requests[request], ticket.ticket_id, "", ticket.status, ticket.refund_total_cents,
            paid.get(ticket.ticket_id, 0),
            auto_approved=any(e.actor_role == Role.SYSTEM.value and e.action == "approve" for e in entries),
            manager=any(e.to_status == "PENDING_MANAGER" for e in entries),
            timed_out=any(e.action in TIMEOUTS for e in entries),
            decisions=sum(1 for e in entries if e.actor_role in PEOPLE),
            waits_for_people=ticket.status in WAITING_FOR_PEOPLE)
    for request, order in requests.items():
        if request not in found:
            found[request] = Outcome(request, order, refused=refusals.get(request, "NO_OUTCOME"))
    return found, commands_refused, dead_letters


def policy_settings(settings: Settings, policy: dict[str, Any], shop: str | None) -> Settings:
    """Today's settings with ``policy`` laid over every shop's policy, or over one shop's."""
    if shop is None:
        merged = {**json.loads(settings.policy or "{}"), **policy}
        shops = {s: {k: v for k, v in o.items() if k not in policy}
                 for s, o in json.loads(settings.shop_policies or "{}").items()}
        changed = settings.with_changes(policy=json.dumps(merged), shop_policies=json.dumps(shops))
    else:
        shops = json.loads(settings.shop_policies or "{}")
        shops[shop] = {**shops.get(shop, {}), **policy}
        changed = settings.with_changes(shop_policies=json.dumps(shops))
    changed.policy_for(shop or "any-shop")  # a wrong key or value is refused now, not half-way
    return changed


async def what_if(settings: Settings, policy: dict[str, Any], start: date, end: date, shop: str | None = None, *,
                  only: set[str] | None = None, reading: Callable[[int, int], None] = lambda done, total: None,
                  progress: Callable[[str, int, int], None] = lambda run, done, total: None) -> WhatIf:
    """Replays the period's requests' orders (their inputs from their first fact on) twice;
    ``only``: of these orders alone."""
    changed_settings = policy_settings(settings, policy, shop)
    read_at = datetime.now(UTC)
    log = await read_inputs(replay_settings(settings), progress=reading)
    requests, orders = in_period(log, start, end, shop, ZoneInfo(settings.reporting_timezone))
    if only is not None:
        requests = {request: order for request, order in requests.items() if order in only}
        orders &= only
    inputs = log.of_orders(orders)
    results: dict[str, tuple[dict[str, Outcome], int, Counter[str]]] = {}
    for run, run_settings in (("today", settings), ("changed", changed_settings)):
        async with scratch_database(settings, "whatif") as url:
            await replay_into(run_settings, url, inputs, read_at,
                              lambda n, run=run: progress(run, n, len(inputs)))  # type: ignore[misc]
            results[run] = await outcomes(settings, url, requests)
    (baseline, refused_today, dead_today), (changed, refused_changed, dead_changed) = (
        results["today"], results["changed"])
    report = WhatIf(policy, shop, (start, end), len(requests), len(orders), baseline, changed,
                    rejected_commands=(refused_today, refused_changed), dead_letters=(dead_today, dead_changed),
                    truncated=bool(log.truncated))
    for name, differs in CHANGES.items():
        report.by_change[name] = sorted(r for r in requests if differs(baseline[r], changed[r]))
    return report
