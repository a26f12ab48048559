"""How ``aftersales stats`` and ``aftersales alerts list`` print monitoring's figures and work
items: a table for a person at a terminal, or JSON for a script."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.domain.figures import Rate
from services.domain.figures import duration_text as duration
from services.domain.figures import money_text as money
from services.domain.work_queue import WorkItem

from .service import Stats


def _rate(rate: Rate) -> dict[str, Any]:
    return {"in_tickets": rate.in_tickets, "sold": rate.sold, "per_mille": rate.per_mille}


def as_dict(found: Stats) -> dict[str, Any]:
    figures = found.figures
    return {
        "shop_id": found.shop_id, "first_day": found.first_day.isoformat(), "last_day": found.last_day.isoformat(),
        "rate": _rate(figures.rate),
        "by_sku": {sku: _rate(rate) for sku, rate in figures.by_sku.items()},
        "by_category": {name: _rate(rate) for name, rate in figures.by_category.items()},
        "tickets_opened": figures.tickets_opened,
        "reasons": [{"type": kind, "reason": reason, "tickets": n}
                    for (kind, reason), n in sorted(figures.reasons.items())],
        "refunded_cents": figures.refunded, "refunds_completed": figures.refunds_completed,
        "refunds_failed": figures.refunds_failed, "refunds_retried": figures.refunds_retried,
        "time_in_state": [{"status": t.status, "tickets": t.tickets, "p50_seconds": t.p50_seconds,
                           "p95_seconds": t.p95_seconds, "max_seconds": t.max_seconds} for t in found.time_in_state],
        "sla_breaches": figures.sla_breaches,
        "integration_errors": [{"system": system, "kind": kind, "count": n}
                               for (system, kind), n in sorted(figures.integration_errors.items())],
        "dead_letters": [{"topic": topic, "reason": reason, "count": n}
                         for (topic, reason), n in sorted(figures.dead_letters.items())],
    }


def as_text(found: Stats) -> str:
    figures = found.figures
    period = found.first_day.isoformat() if found.first_day == found.last_day else \
        f"{found.first_day.isoformat()} .. {found.last_day.isoformat()}"
    out = [f"after-sales figures, {found.shop_id or 'every shop'}, {period}",
           f"  after-sales rate   {figures.rate}  ({figures.units_in_tickets} units in tickets / "
           f"{figures.units_sold} sold)"]
    for title, rates in (("per sku", figures.by_sku), ("per category", figures.by_category)):
        if rates:
            out.append(f"  {title}")
            out += [f"    {name:<24} {rate!s:>7}  ({rate.in_tickets}/{rate.sold})" for name, rate in rates.items()]
    out.append(f"  tickets opened     {figures.tickets_opened}")
    for kind in sorted({kind for kind, _ in figures.reasons}):
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(figures.reasons_of(kind).items(),
                                                                      key=lambda pair: (-pair[1], pair[0])))
        out.append(f"    {kind:<18} {reasons}")
    refunded = ", ".join(money(cents, currency) for currency, cents in sorted(figures.refunded.items())) or "none"
    out.append(f"  refunded           {refunded}  ({figures.refunds_completed} refunds, "
               f"{figures.refunds_failed} failed, {figures.refunds_retried} retried)")
    if found.time_in_state:
        out.append("  time in state      tickets      p50      p95      max")
        out += [f"    {t.status:<20} {t.tickets:>5} {duration(t.p50_seconds):>8} {duration(t.p95_seconds):>8} "
                f"{duration(t.max_seconds):>8}" for t in found.time_in_state]
    breaches = ", ".join(f"{state or '?'} {n}" for state, n in sorted(figures.sla_breaches.items())) or "none"
    out.append(f"  SLA breaches       {breaches}")
    errors = ", ".join(f"{system} {kind} {n}" for (system, kind), n in sorted(figures.integration_errors.items()))
    out.append(f"  integration errors {errors or 'none'}")
    letters = ", ".join(f"{topic} {reason} {n}" for (topic, reason), n in sorted(figures.dead_letters.items()))
    out.append(f"  dead letters       {letters or 'none'}")
    return "\n".join(out)


def item_line(item: WorkItem, now: datetime) -> str:
    age = duration((now - item.opened_at).total_seconds())
    ticket = item.ticket_id or item.order_id
    return (f"{item.item_id}  {item.state.value:<12} {item.severity.value:<8} {item.owner:<9} {age:>7}  "
            f"×{item.occurrences:<3} {item.kind:<24} {ticket}  {item.message[:80]}")


def item_dict(item: WorkItem) -> dict[str, Any]:
    return {"item_id": str(item.item_id), "state": item.state.value, "severity": item.severity.value,
            "owner": item.owner, "kind": item.kind, "order_id": item.order_id, "ticket_id": item.ticket_id,
            "message": item.message, "opened_at": item.opened_at.isoformat(), "occurrences": item.occurrences,
            "escalations": item.escalations,
            "ack_due_at": item.ack_due_at.isoformat() if item.ack_due_at else None,
            "acknowledged_by": item.acknowledged_by, "resolved_by": item.resolved_by, "note": item.note}
