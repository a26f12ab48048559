"""The one backoff rule of the durable retry schedules (refund resends, ERP resends)."""

from __future__ import annotations

from datetime import timedelta


def backoff(base_seconds: float, attempts: int) -> timedelta:
    """base, 2×base, 4×base, … after the 1st, 2nd, 3rd attempt."""
    return timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0))
