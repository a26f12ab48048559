"""The replay's own rules, without Kafka or PostgreSQL: which recorded inputs a rebuild of some
orders takes, when the log no longer reaches back, how a changed policy is laid over today's,
which requests a what-if counts in its period, and how an outcome change is named."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contracts import Money, encode, new_envelope
from contracts import aftersales as c
from contracts import orders as o
from contracts.admin import ReplayDeadLetter
from services.common.settings import Settings
from services.replay.engine import KeptProducer, LogClock
from services.replay.log import INPUTS, Reach, Recorded, RecordedLog, merged
from services.replay.report import reach_lines
from services.replay.whatif import CHANGES, Outcome, in_period, policy_settings

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai


def recorded(payload: Any, key: str, topic: str, offset: int, at: datetime = T0,
             producer: str = "order-system") -> Recorded:
    envelope = new_envelope(payload, key=key, producer=producer)
    return Recorded(topic, 0, offset, at, key, encode(envelope), envelope.type)


def placed(order_id: str, shop: str, offset: int) -> Recorded:
    return recorded(o.OrderPlaced(
        order_id=order_id, shop_id=shop, buyer_id="b-1", placed_at=T0 - timedelta(days=3),
        lines=[o.OrderLine(line_no=1, sku="S", quantity=1, unit_price=Money.cny(100), paid=Money.cny(100))],
        shipping_fee=Money.cny(0)), order_id, "orders.events", offset)


def asked(order_id: str, offset: int, at: datetime) -> tuple[str, Recorded]:
    request_id = uuid.uuid4()
    return str(request_id), recorded(c.RequestAfterSales(
        request_id=request_id, order_id=order_id, buyer_id="b-1", type=c.AfterSalesType.REFUND_ONLY,
        lines=[c.RequestedLine(line_no=1, quantity=1)], reason_code="NO_LONGER_WANTED"),
        order_id, "aftersales.requests", offset, at, producer="buyer-frontend")


def replayed(dead_letter_of: Recorded, offset: int) -> Recorded:
    return recorded(ReplayDeadLetter(
        dead_letter_id=uuid.uuid4(), source_topic=dead_letter_of.topic, partition=dead_letter_of.partition,
        offset=dead_letter_of.offset, consumer_group="aftersales.intake", original_sha256="0" * 64,
        requested_by="admin-1"), f"dlq.{uuid.uuid4()}", "aftersales.admin-commands", offset, producer="back-office")


def test_a_rebuild_of_some_orders_takes_their_inputs_the_reasons_catalogue_and_replays_of_their_dead_letters():
    mine, other = placed("O-1", "shop-1", 0), placed("O-2", "shop-1", 1)
    reason = Recorded("aftersales.admin-commands", 0, 0, T0, "reasons.REFUND_ONLY", b"{}", "SaveReason")
    log = RecordedLog([mine, other, reason, replayed(mine, 1), replayed(other, 2)], [])
    chosen = log.of_orders({"O-1"})
    assert [r.key for r in chosen][:2] == ["O-1", "reasons.REFUND_ONLY"]
    assert len(chosen) == 3  # and the replay of O-1's dead letter, not of O-2's
    assert json.loads(chosen[2].value)["payload"]["offset"] == mine.offset


def test_the_command_says_when_the_log_no_longer_reaches_back_to_its_start():
    whole = RecordedLog([], [Reach("orders.events", 0, 0, 10), Reach("orders.events", 1, 0, 0)])
    assert whole.truncated == []
    assert reach_lines(whole) == []
    cut = RecordedLog([], [Reach("orders.events", 0, 0, 10), Reach("aftersales.requests", 3, 1_200, 1_500)])
    assert [r.topic for r in cut.truncated] == ["aftersales.requests"]
    assert "aftersales.requests[3] (it begins at offset 1200)" in "\n".join(reach_lines(cut))


def test_a_changed_policy_is_laid_over_every_shop_or_over_one_shop_and_a_wrong_key_is_refused():
    today = Settings(policy=json.dumps({"review_sla_days": 2}), shop_policies=json.dumps({
        "shop-1": {"after_sales_window_days": 10, "has_erp": True}}))
    everywhere = policy_settings(today, {"after_sales_window_days": 15}, None)
    assert everywhere.policy_for("shop-1").after_sales_window == timedelta(days=15)  # the shop's own 10 gives way
    assert everywhere.policy_for("shop-1").has_erp
    assert everywhere.policy_for("shop-9").review_sla == timedelta(days=2)
    one = policy_settings(today, {"after_sales_window_days": 15}, "shop-2")
    assert one.policy_for("shop-2").after_sales_window == timedelta(days=15)
    assert one.policy_for("shop-1").after_sales_window == timedelta(days=10)
    assert one.policy_for("shop-9").after_sales_window == timedelta(days=7)
    with pytest.raises(ValueError, match="after_sale_window"):
        policy_settings(today, {"after_sale_window_days": 15}, None)


def test_the_period_counts_requests_by_the_reporting_days_of_one_shop():
    shanghai = ZoneInfo("Asia/Shanghai")
    first, late, other_shop = placed("O-1", "shop-1", 0), placed("O-2", "shop-1", 1), placed("O-3", "shop-2", 2)
    r1, on_the_day = asked("O-1", 0, T0)  # 23:00 on 30 November in Shanghai
    r2, next_day = asked("O-2", 1, T0 + timedelta(hours=2))  # 01:00 on 1 December there
    _, elsewhere = asked("O-3", 2, T0)
    log = RecordedLog([first, late, other_shop, on_the_day, next_day, elsewhere], [])
    assert in_period(log, date(2026, 11, 30), date(2026, 11, 30), "shop-1", shanghai) == ({r1: "O-1"}, {"O-1"})
    assert in_period(log, date(2026, 12, 1), date(2026, 12, 1), None, shanghai) == ({r2: "O-2"}, {"O-2"})
    assert in_period(log, date(2026, 11, 30), date(2026, 12, 1), None, shanghai)[1] == {"O-1", "O-2", "O-3"}


def test_each_outcome_change_has_its_name():
    refused = Outcome("r", "O-1", refused="OUTSIDE_AFTER_SALES_WINDOW")
    waiting = Outcome("r", "O-1", "T-1", status="PENDING_REVIEW", refund_cents=100, waits_for_people=True)
    to_manager = Outcome("r", "O-1", "T-1", status="PENDING_MANAGER", refund_cents=100, manager=True,
                         waits_for_people=True)

    def names(before: Outcome, after: Outcome) -> set[str]:
        return {name for name, differs in CHANGES.items() if differs(before, after)}

    assert names(refused, waiting) == {"refused → opened", "final status", "refund amount"}
    assert names(waiting, refused) == {"opened → refused", "final status", "refund amount"}
    assert names(waiting, to_manager) == {"escalated to a manager", "final status"}
    assert names(waiting, waiting) == set()


async def test_the_replay_keeps_what_workers_send_straight_to_kafka_and_its_clock_never_goes_back():
    kept = KeptProducer(Settings())
    await kept.start()
    await kept.send_and_wait("aftersales.dlq", b"letter", key=b"O-1")
    await kept.send_batch([("ops.alerts", b"alert", None, [])])
    assert kept.take() == [("aftersales.dlq", b"O-1", b"letter"), ("ops.alerts", b"", b"alert")]
    assert kept.take() == []
    clock = LogClock(T0)
    clock.advance(T0 + timedelta(seconds=5))
    clock.advance(T0)  # an input recorded a little earlier on another partition
    assert clock() == T0 + timedelta(seconds=5)


def test_inputs_of_the_same_millisecond_come_back_in_the_order_of_the_flow():
    """A decision written in the millisecond of its ticket's request is replayed after it, however
    the partitions are listed (decisions sort before requests by name)."""
    _, request = asked("O-1", 0, T0)
    decision = Recorded("aftersales.decisions", 3, 0, T0, "O-1", b"{}", "ApproveTicket")
    later = Recorded("aftersales.decisions", 3, 1, T0 + timedelta(milliseconds=1), "O-1", b"{}", "ApproveRefund")
    inputs = merged([[decision, later], [request]], [topic.name for topic in INPUTS])
    assert [r.type for r in inputs] == ["RequestAfterSales", "ApproveTicket", "ApproveRefund"]

