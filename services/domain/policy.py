"""Policy settings (configurable, per shop where it makes sense), with DOMAIN.md's defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import timedelta
from enum import Enum
from typing import Any

from .settlement import SettlementCycle


@dataclass(frozen=True)
class Policy:
    after_sales_window: timedelta = timedelta(days=7)
    repair_warranty: timedelta = timedelta(days=365)  # 保修期: repair has its own window (seed 000)
    payment_timeout: timedelta = timedelta(minutes=30)
    auto_approve_refund_within: timedelta = timedelta(minutes=30)
    review_sla: timedelta = timedelta(hours=72)
    auto_approve_refund_only_on_review_sla: bool = False
    approval_sla: timedelta = timedelta(hours=72)
    sla_realert_every: timedelta = timedelta(hours=24)
    return_window: timedelta = timedelta(days=7)
    receipt_window: timedelta = timedelta(days=14)
    repair_sla: timedelta = timedelta(days=14)
    reshipped_auto_confirm: timedelta = timedelta(days=10)
    refund_result_sla: timedelta = timedelta(hours=1)
    intercept_wait: timedelta = timedelta(minutes=30)
    large_amount_threshold_cents: int = 500_000
    finance_auto_approve_refund_only: bool = False
    finance_auto_approve_below_cents: int = 0
    allow_after_sales_on_exchanged_units: bool = False
    has_erp: bool = False
    # a serial returner: more than max tickets in the window, or more than max_rate % of the
    # buyer's orders in it once the buyer has min_orders there (monitoring flags; reviewers see it)
    serial_returner_window: timedelta = timedelta(days=30)
    serial_returner_max_tickets: int = 5
    serial_returner_max_rate_percent: int = 50
    serial_returner_min_orders: int = 4
    buyer_reminder_before: timedelta = timedelta(hours=24)  # remind a buyer this long before their deadline
    # the virtual currency (gold coins) paid with goes back with the refund (seed 004); a shop that
    # returns it only when agreed (seed 003) sets False, and ops may still give it back per ticket
    return_virtual_currency: bool = True
    # the merchant's statements (seed 004): daily, weekly or monthly cycles, paid T+n (n ≥ 1)
    settlement_cycle: SettlementCycle = SettlementCycle.DAILY
    settlement_delay_days: int = 1

    def with_overrides(self, overrides: dict[str, Any]) -> Policy:
        """Applies per-shop overrides; durations in seconds (``name`` or ``name_seconds``) or days
        (``name_days``). Nothing is coerced: "false" is not a boolean and 12.9 is not a whole
        number of cents; a wrong key or type raises ``ValueError`` naming the key."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name.endswith("_days") and isinstance(getattr(self, name[:-5], None), timedelta):
                changes[name[:-5]] = timedelta(days=_number(name, value))
            elif name.endswith("_seconds") and isinstance(getattr(self, name[:-8], None), timedelta):
                changes[name[:-8]] = timedelta(seconds=_number(name, value))
            elif name in known:
                changes[name] = _typed_like(name, getattr(self, name), value)
            else:
                raise ValueError(f"unknown policy setting {name!r}")
        return replace(self, **changes)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"policy setting {name!r} must be a number of at least 0, not {type(value).__name__}")
    return float(value)


def _typed_like(name: str, current: Any, value: Any) -> Any:
    if isinstance(current, Enum):
        try:
            return type(current)(value)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in type(current))
            raise ValueError(f"policy setting {name!r} must be one of {allowed}, not {value!r}") from None
    if isinstance(current, timedelta):
        return timedelta(seconds=_number(name, value))
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"policy setting {name!r} must be true or false, not {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"policy setting {name!r} must be a whole number of at least 0, not {value!r}")
    return value
