"""Policy settings (configurable, per shop where it makes sense), with DOMAIN.md's defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Policy:
    after_sales_window: timedelta = timedelta(days=7)
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

    def with_overrides(self, overrides: dict[str, Any]) -> Policy:
        """Applies per-shop overrides; durations may be given in seconds, days via ``*_days``."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name.endswith("_days") and name[:-5] in known:
                changes[name[:-5]] = timedelta(days=float(value))
            elif name.endswith("_seconds") and name[:-8] in known:
                changes[name[:-8]] = timedelta(seconds=float(value))
            elif name in known:
                current = getattr(self, name)
                if isinstance(current, timedelta):
                    value = timedelta(seconds=float(value))
                elif isinstance(current, bool):
                    value = bool(value)
                elif isinstance(current, int):
                    value = int(value)
                changes[name] = value
            else:
                raise ValueError(f"unknown policy setting {name!r}")
        return replace(self, **changes)
