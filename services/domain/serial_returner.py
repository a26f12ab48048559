"""The serial-returner signal: a buyer whose after-sales in a period pass the shop's threshold.

It is a signal for the reviewer, never a refusal: the rule and the figures it used go with the
flag, so a reviewer sees why before approving (a buyer with many orders and a few returns is not
flagged by the count alone when the rate stays low: both have to be read). The thresholds are
per shop (``Policy.serial_returner_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from .policy import Policy


@dataclass(frozen=True)
class ReturnerFlag:
    window_days: int
    tickets_in_window: int
    orders_in_window: int
    max_tickets: int
    max_rate_percent: int
    min_orders: int
    reason: str


def serial_returner(tickets_in_window: int, orders_in_window: int, policy: Policy) -> ReturnerFlag | None:
    """The flag, if ``tickets_in_window`` after-sales on ``orders_in_window`` orders pass the policy."""
    days = max(policy.serial_returner_window.days, 1)
    by_count = tickets_in_window > policy.serial_returner_max_tickets
    by_rate = (orders_in_window >= policy.serial_returner_min_orders
               and tickets_in_window * 100 > policy.serial_returner_max_rate_percent * orders_in_window)
    if not (by_count or by_rate):
        return None
    reasons = []
    if by_count:
        reasons.append(f"{tickets_in_window} after-sales in {days} days "
                       f"(more than {policy.serial_returner_max_tickets})")
    if by_rate:
        rate = tickets_in_window * 100 // max(orders_in_window, 1)
        reasons.append(f"after-sales on {rate}% of {orders_in_window} orders in {days} days "
                       f"(more than {policy.serial_returner_max_rate_percent}%)")
    return ReturnerFlag(days, tickets_in_window, orders_in_window, policy.serial_returner_max_tickets,
                        policy.serial_returner_max_rate_percent, policy.serial_returner_min_orders,
                        "; ".join(reasons))
