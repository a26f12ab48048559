"""How ``aftersales settlement statement`` prints a statement: a table for a person at a
terminal, or JSON for a script (or the merchant's accounting)."""

from __future__ import annotations

from typing import Any

from services.domain.figures import money_text as money
from services.domain.settlement import Amounts

from .service import Statement


def _amounts(amounts: Amounts) -> dict[str, int]:
    return {"paid_cents": amounts.paid_cents, "subsidy_cents": amounts.subsidy_cents,
            "fee_cents": amounts.fee_cents, "net_cents": amounts.net_cents}


def as_dict(found: Statement) -> dict[str, Any]:
    return {
        "shop_id": found.shop_id, "cycle": found.cycle.label, "kind": found.cycle.kind.value,
        "first_day": found.cycle.first.isoformat(), "last_day": found.cycle.last.isoformat(),
        "payable_on": found.payable_on.isoformat(),
        "entries": [{"entered_on": e.entered_on.isoformat(), "order_id": e.order_id, "ticket_id": e.ticket_id,
                     "kind": e.kind.value, "currency": e.currency, **_amounts(e.amounts)} for e in found.entries],
        "totals": [{"currency": t.currency, "orders": t.orders, "paid_cents": t.paid_cents,
                    "subsidy_cents": t.subsidy_cents, "fee_cents": t.fee_cents, "refunded_cents": t.refunded_cents,
                    "net_cents": t.net_cents} for t in found.totals],
        "held": [{"order_id": o.order_id, "why": o.held_because(), "currency": o.currency,
                  "net_cents": o.amounts.net_cents if o.amounts else None} for o in found.held],
    }


def as_text(found: Statement) -> str:
    cycle = found.cycle
    out = [f"settlement statement, {found.shop_id}, {cycle.kind.value} cycle {cycle.label} "
           f"({cycle.first.isoformat()} .. {cycle.last.isoformat()}), payable on {found.payable_on.isoformat()}",
           f"  {'entered':<10}  {'order':<24} {'kind':<12} {'paid':>14} {'subsidy':>12} {'fee':>12} {'net':>14}"]
    for e in found.entries:
        a = e.amounts
        out.append(f"  {e.entered_on.isoformat():<10}  {e.order_id:<24} {e.kind.value:<12} "
                   f"{money(a.paid_cents, e.currency):>14} {money(a.subsidy_cents, e.currency):>12} "
                   f"{money(a.fee_cents, e.currency):>12} {money(a.net_cents, e.currency):>14}")
    if not found.entries:
        out.append("  (nothing entered in this cycle)")
    for t in found.totals:
        out.append(f"  total {t.currency}: {t.orders} order(s), paid {money(t.paid_cents, t.currency)} "
                   f"(after {money(t.refunded_cents, t.currency)} given back), subsidy "
                   f"{money(t.subsidy_cents, t.currency)}, fee {money(t.fee_cents, t.currency)}, "
                   f"net {money(t.net_cents, t.currency)}")
    if found.held:
        out.append(f"  held back now: {len(found.held)} order(s)")
        out += [f"    {o.order_id:<24} {o.held_because()}" for o in found.held]
    return "\n".join(out)
