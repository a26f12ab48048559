"""After-sales figures from monitoring's counters: the arithmetic ops read, in one place for the
CLI, the daily-figures topic and the back office's dashboard.

Monitoring counts facts into ``(metric, key1, key2) → value`` per shop and day; this module sums
a period of them into what the issue's reader asks: the after-sales rate per sku and category
(units in tickets ÷ units sold), reasons per type, refunds per currency, refunds failed and
retried, SLA breaches per state, integration errors per system, dead letters per topic and
reason. Rates are kept as the two counts (a ratio of integers, shown in per mille rounded half
up) so no float rounding enters a figure that is summed again later.

Time in state uses the nearest-rank percentile (PostgreSQL's ``percentile_disc``): the value
reported is one a ticket really spent, never an interpolation between two tickets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# The metrics monitoring counts, with what their keys mean.
UNITS_SOLD = "units_sold"  # sku, category
UNITS_IN_TICKETS = "units_in_tickets"  # sku, category
TICKETS_OPENED = "tickets_opened"  # type, reason code
REFUNDED = "refunded"  # currency (value in cents)
REFUNDS_COMPLETED = "refunds_completed"
REFUNDS_FAILED = "refunds_failed"
REFUNDS_RETRIED = "refunds_retried"
SLA_BREACHES = "sla_breaches"  # ticket state, alert kind
INTEGRATION_ERRORS = "integration_errors"  # system (ERP, WMS), kind or reason code
DEAD_LETTERS = "dead_letters"  # source topic, reason code


@dataclass(frozen=True)
class Rate:
    """Units in after-sales tickets against units sold."""

    in_tickets: int
    sold: int

    @property
    def per_mille(self) -> int | None:
        """The rate in ‰, rounded half up; None when nothing was sold (a rate of what?)."""
        if self.sold == 0:
            return None
        return (self.in_tickets * 2000 + self.sold) // (2 * self.sold)

    def __str__(self) -> str:
        return per_mille_text(self.per_mille)


def per_mille_text(per_mille: int | None) -> str:
    """A rate in ‰ as people read it (``667`` → ``66.7%``); ``n/a`` when nothing was sold."""
    return "n/a" if per_mille is None else f"{per_mille // 10}.{per_mille % 10}%"


def money_text(cents: int, currency: str) -> str:
    """An amount as a terminal prints it: ``-12345, "CNY"`` → ``-CNY 123.45``."""
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    return f"{sign}{currency} {cents // 100:,}.{cents % 100:02d}"


def duration_text(seconds: float) -> str:
    """A time in state or an age as people read it: ``95`` → ``1m35s``, ``93600`` → ``1d02h``."""
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class Figures:
    units_sold: int = 0
    units_in_tickets: int = 0
    tickets_opened: int = 0
    refunds_completed: int = 0
    refunds_failed: int = 0
    refunds_retried: int = 0
    refunded: dict[str, int] = field(default_factory=dict)  # currency → cents
    by_sku: dict[str, Rate] = field(default_factory=dict)
    by_category: dict[str, Rate] = field(default_factory=dict)
    reasons: dict[tuple[str, str], int] = field(default_factory=dict)  # (type, reason) → tickets
    sla_breaches: dict[str, int] = field(default_factory=dict)  # state → breaches
    integration_errors: dict[tuple[str, str], int] = field(default_factory=dict)  # (system, kind)
    dead_letters: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, reason)

    @property
    def rate(self) -> Rate:
        return Rate(self.units_in_tickets, self.units_sold)

    def reasons_of(self, ticket_type: str) -> dict[str, int]:
        return {reason: n for (kind, reason), n in self.reasons.items() if kind == ticket_type}


def of(counters: Iterable[tuple[str, str, str, int]]) -> Figures:
    """Sums ``(metric, key1, key2, value)`` rows (of any days and shops) into figures."""
    sold: dict[tuple[str, str], int] = defaultdict(int)
    in_tickets: dict[tuple[str, str], int] = defaultdict(int)
    found = Figures()
    for metric, key1, key2, value in counters:
        if metric == UNITS_SOLD:
            found.units_sold += value
            sold[(key1, key2)] += value
        elif metric == UNITS_IN_TICKETS:
            found.units_in_tickets += value
            in_tickets[(key1, key2)] += value
        elif metric == TICKETS_OPENED:
            found.tickets_opened += value
            found.reasons[(key1, key2)] = found.reasons.get((key1, key2), 0) + value
        elif metric == REFUNDED:
            found.refunded[key1] = found.refunded.get(key1, 0) + value
        elif metric == REFUNDS_COMPLETED:
            found.refunds_completed += value
        elif metric == REFUNDS_FAILED:
            found.refunds_failed += value
        elif metric == REFUNDS_RETRIED:
            found.refunds_retried += value
        elif metric == SLA_BREACHES:
            found.sla_breaches[key1] = found.sla_breaches.get(key1, 0) + value
        elif metric == INTEGRATION_ERRORS:
            found.integration_errors[(key1, key2)] = found.integration_errors.get((key1, key2), 0) + value
        elif metric == DEAD_LETTERS:
            found.dead_letters[(key1, key2)] = found.dead_letters.get((key1, key2), 0) + value
    found.by_sku = _rates(sold, in_tickets, 0)
    found.by_category = _rates(sold, in_tickets, 1)
    return found


def _rates(sold: dict[tuple[str, str], int], in_tickets: dict[tuple[str, str], int], part: int) -> dict[str, Rate]:
    sold_by: dict[str, int] = defaultdict(int)
    in_tickets_by: dict[str, int] = defaultdict(int)
    for key, n in sold.items():
        sold_by[key[part]] += n
    for key, n in in_tickets.items():
        in_tickets_by[key[part]] += n
    return {name: Rate(in_tickets_by.get(name, 0), sold_by.get(name, 0))
            for name in sorted(set(sold_by) | set(in_tickets_by))}


@dataclass(frozen=True)
class TimeInState:
    status: str
    tickets: int
    p50_seconds: float
    p95_seconds: float
    max_seconds: float


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The smallest value with at least ``fraction`` of the values at or below it (``percentile_disc``)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def time_in_state(durations: Iterable[tuple[str, float]]) -> list[TimeInState]:
    """p50 / p95 / max per state of ``(state, seconds)`` pairs (one per ticket that left it)."""
    by_state: dict[str, list[float]] = defaultdict(list)
    for status, seconds in durations:
        by_state[status].append(seconds)
    return [TimeInState(status, len(values), nearest_rank(values, 0.5), nearest_rank(values, 0.95), max(values))
            for status, values in sorted(by_state.items())]
