"""Monitoring's use cases on the fakes: a hand-computed day, work items as people and the clock
move them, the serial-returner flag, and the line states the order page shows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from contracts import admin as ad
from contracts import new_envelope, ops
from services.domain import errors
from services.domain.work_queue import ItemState
from services.monitoring import service

from .monitoring_day import (
    DAY,
    EXPECTED_BREACHES_NEXT_DAY,
    EXPECTED_DEAD_LETTERS,
    EXPECTED_LABELS,
    EXPECTED_REASONS,
    EXPECTED_REFUNDS,
    EXPECTED_TIME_IN_STATE,
    EXPECTED_UNITS,
    NEXT_DAY,
    at,
    day,
)
from .shop import Shop

pytestmark = pytest.mark.asyncio




async def stats(shop: Shop, shop_id: str | None, first: Any, last: Any) -> service.Stats:
    return await shop.run("monitoring", lambda uow: service.stats(uow, shop.deps, shop_id, first, last))


async def test_a_hand_computed_day_gives_its_figures() -> None:
    shop, today = Shop(), day()
    for _, envelope in today.messages:
        await shop.consume("monitoring", envelope)

    found = await stats(shop, today.shop_id, DAY, DAY)
    figures = found.figures
    assert (figures.units_sold, figures.units_in_tickets, str(figures.rate)) == (
        EXPECTED_UNITS["sold"], EXPECTED_UNITS["in_tickets"], EXPECTED_UNITS["rate"])
    assert {sku: str(rate) for sku, rate in figures.by_sku.items()} == {
        "SKU-A": EXPECTED_UNITS["SKU-A"], "SKU-B": EXPECTED_UNITS["SKU-B"]}
    assert {name: str(rate) for name, rate in figures.by_category.items()} == {
        "shoes": EXPECTED_UNITS["shoes"], "hats": EXPECTED_UNITS["hats"]}
    assert figures.reasons == EXPECTED_REASONS
    assert (figures.refunds_completed, figures.refunds_failed, figures.refunds_retried, figures.refunded) == (
        EXPECTED_REFUNDS["completed"], EXPECTED_REFUNDS["failed"], EXPECTED_REFUNDS["retried"],
        EXPECTED_REFUNDS["refunded"])
    assert {t.status: (t.tickets, t.p50_seconds, t.p95_seconds, t.max_seconds)
            for t in found.time_in_state} == EXPECTED_TIME_IN_STATE
    assert figures.sla_breaches == {}  # the breach fell on the next day in Shanghai

    next_day = await stats(shop, today.shop_id, NEXT_DAY, NEXT_DAY)
    assert next_day.figures.sla_breaches == EXPECTED_BREACHES_NEXT_DAY
    everything = await stats(shop, None, DAY, NEXT_DAY)
    assert everything.figures.dead_letters == EXPECTED_DEAD_LETTERS
    assert everything.figures.integration_errors == {("WMS", "SCHEMA_VIOLATION"): 1}

    lines = {e.order_id: e for e in shop.sent("LineAfterSalesChanged")}  # the newest per order
    for order_id, expected in ((today.first_order, "first"), (today.second_order, "second")):
        line = lines[order_id]
        assert (line.state.value, line.label, line.refunded_units, line.refunded.cents) == EXPECTED_LABELS[expected]
    assert [(e.order_id, e.label) for e in shop.sent("LineAfterSalesChanged")] == [
        (today.first_order, "售后中"), (today.second_order, "售后中"), (today.first_order, "部分退款")]

    (item,) = await shop.run("monitoring", lambda uow: service.work_items(uow))
    assert (item.kind, item.owner, item.occurrences, item.state) == (
        "AWAITING_RETURN_SLA_BREACHED", "ops", 2, ItemState.OPEN)
    assert [e.action.value for e in shop.sent("WorkItemChanged")] == ["OPENED", "REPEATED"]


async def test_the_daily_figures_go_out_once_per_changed_day() -> None:
    shop, today = Shop(), day()
    for _, envelope in today.messages:
        await shop.consume("monitoring", envelope)
    await shop.tick("monitoring", service.publish_figures(shop.deps))
    published = {(e.shop_id, e.day): e for e in shop.sent("DailyFiguresChanged")}
    assert set(published) == {(today.shop_id, DAY), (today.shop_id, NEXT_DAY), ("all-shops", DAY)}
    ours = published[(today.shop_id, DAY)]
    assert (ours.units_sold, ours.units_in_tickets, ours.tickets_opened, ours.refunds_failed) == (6, 4, 2, 1)
    assert [(m.cents, m.currency) for m in ours.refunded] == [(5000, "CNY")]
    assert await shop.tick("monitoring", service.publish_figures(shop.deps)) == 0  # nothing changed since


async def alert(shop: Shop, kind: str, severity: ops.Severity, order_id: str = "O-wq",
                ticket_id: str | None = "T-wq") -> None:
    raised = ops.OpsAlert(kind=kind, severity=severity, message="something is late", order_id=order_id,
                          ticket_id=ticket_id)
    await shop.consume("monitoring", new_envelope(raised, key=order_id, producer="scheduler", occurred_at=shop.now))


async def items(shop: Shop, **query: Any) -> list[Any]:
    return await shop.run("monitoring", lambda uow: service.work_items(uow, **query))


async def test_an_unacknowledged_item_escalates_then_goes_to_the_managers_and_stops() -> None:
    shop = Shop()
    await alert(shop, "REVIEW_SLA_BREACHED", ops.Severity.WARNING)
    job = service.escalate(shop.deps)
    shop.later(hours=3, minutes=59)
    assert await shop.tick("monitoring", job) == 0  # WARNING: 4 hours to acknowledge
    shop.later(minutes=2)
    assert await shop.tick("monitoring", job) == 1
    (item,) = await items(shop)
    assert (item.severity.value, item.owner, item.escalations) == ("CRITICAL", "ops", 1)
    escalated = shop.last("OpsAlert")
    assert (escalated.kind, escalated.severity) == ("WORK_ITEM_ESCALATED", ops.Severity.CRITICAL)

    shop.later(minutes=16)  # CRITICAL: a quarter of an hour
    assert await shop.tick("monitoring", job) == 1
    (item,) = await items(shop)
    assert (item.severity.value, item.owner, item.escalations, item.ack_due_at) == ("CRITICAL", "manager", 2, None)
    shop.later(days=3)
    assert await shop.tick("monitoring", job) == 0  # nobody above the managers


async def test_an_acknowledged_item_stops_escalating_and_a_resolved_one_lets_the_next_alert_open_a_new_item() -> None:
    shop = Shop()
    await alert(shop, "REFUND_FAILED", ops.Severity.CRITICAL)
    (item,) = await items(shop)
    assert item.owner == "finance"
    command = new_envelope(ad.AcknowledgeWorkItem(item_id=item.item_id, order_id="O-wq", requested_by="fin-1"),
                           key="O-wq", producer="back-office", occurred_at=shop.now)
    await shop.consume("monitoring", command)
    answer = shop.db.sent("WorkItemChanged")[-1]
    assert (answer.payload.action.value, answer.payload.by, answer.causation_id) == (
        "ACKNOWLEDGED", "fin-1", command.event_id)
    shop.later(hours=1)
    assert await shop.tick("monitoring", service.escalate(shop.deps)) == 0

    await alert(shop, "REFUND_FAILED", ops.Severity.CRITICAL)  # the same condition: a repeat
    (item,) = await items(shop)
    assert (item.occurrences, item.state) == (2, ItemState.ACKNOWLEDGED)
    with pytest.raises(errors.WorkItemNotOpen):
        await shop.run("monitoring", lambda uow: service.acknowledge_item(uow, item.item_id, "fin-2", shop.now))
    await shop.run("monitoring", lambda uow: service.resolve_item(uow, item.item_id, "fin-1", "paid by hand",
                                                                  shop.now))
    await alert(shop, "REFUND_FAILED", ops.Severity.CRITICAL)
    active = await items(shop)
    assert [(i.item_id != item.item_id, i.occurrences) for i in active] == [(True, 1)]
    assert len(await items(shop, include_resolved=True)) == 2


async def test_acknowledging_an_unknown_item_is_refused() -> None:
    shop = Shop()
    with pytest.raises(errors.WorkItemUnknown):
        await shop.run("monitoring", lambda uow: service.acknowledge_item(uow, uuid.uuid4(), "ops-1", shop.now))


async def test_a_higher_severity_repeat_raises_the_item_and_brings_its_deadline_forward() -> None:
    shop = Shop()
    await alert(shop, "ERP_SYNC_FAILED", ops.Severity.WARNING, ticket_id=None)
    shop.later(minutes=5)
    await alert(shop, "ERP_SYNC_FAILED", ops.Severity.CRITICAL, ticket_id=None)
    (item,) = await items(shop)
    assert (item.severity.value, item.ack_due_at) == ("CRITICAL", shop.now + timedelta(minutes=15))


async def test_dead_letter_summaries_keep_one_admin_item_while_they_come() -> None:
    shop = Shop()
    for _ in range(2):
        summary = ops.DeadLetterSummary(since=shop.now - timedelta(minutes=5), until=shop.now, total=3, counts=[
            ops.DeadLetterCount(source_topic="wms.events", reason_code="SCHEMA_VIOLATION", count=3)])
        await shop.consume("monitoring", new_envelope(summary, key="dead-letters", producer="dead_letters",
                                                      occurred_at=shop.now))
    (item,) = await items(shop)
    assert (item.kind, item.owner, item.occurrences) == ("DEAD_LETTERS_WAITING", "admin", 2)
    assert "wms.events SCHEMA_VIOLATION ×3" in item.message


async def test_a_buyer_past_the_shops_threshold_is_flagged_with_the_rule_and_its_figures() -> None:
    shop = Shop(shop_policies={"shop-day": {"serial_returner_max_tickets": 2}})
    today = day()
    opened = [e for _, e in today.messages if e.type == "TicketOpened"]
    for envelope in opened:
        await shop.consume("monitoring", envelope)
    assert shop.sent("BuyerFlagged") == []  # two tickets: not more than two
    third = opened[0].payload.model_copy(update={"ticket": opened[0].payload.ticket.model_copy(
        update={"ticket_id": "T-third", "shop_id": "shop-day"})})
    for envelope in opened:  # the same buyer in the strict shop
        moved = envelope.payload.model_copy(update={"ticket": envelope.payload.ticket.model_copy(
            update={"shop_id": "shop-day", "ticket_id": envelope.payload.ticket.ticket_id + "-x"})})
        await shop.consume("monitoring", new_envelope(moved, key=envelope.key, producer="intake", occurred_at=at(8)))
    assert shop.sent("BuyerFlagged") == []
    await shop.consume("monitoring", new_envelope(third, key=opened[0].key, producer="intake", occurred_at=at(9)))
    flag = shop.last("BuyerFlagged")
    assert (flag.buyer_id, flag.ticket_id, flag.tickets_in_window, flag.max_tickets) == ("buyer-day", "T-third", 3, 2)
    assert flag.reason == "3 after-sales in 30 days (more than 2)"


async def test_an_order_announced_twice_is_sold_once_and_a_ticket_opened_twice_counts_once() -> None:
    shop, today = Shop(), day()
    for _, envelope in today.messages:
        await shop.consume("monitoring", envelope)
        if envelope.type in ("OrderPlaced", "TicketOpened"):  # the producer sent it again, with a new event id
            await shop.consume("monitoring", new_envelope(envelope.payload, key=envelope.key,
                                                          producer=envelope.producer, occurred_at=envelope.occurred_at))
    figures = (await stats(shop, today.shop_id, DAY, DAY)).figures
    assert (figures.units_sold, figures.units_in_tickets, figures.tickets_opened) == (6, 4, 2)


@pytest.mark.parametrize("ticket_first", [True, False])
async def test_a_line_ticketed_before_its_order_facts_came_takes_the_ordered_quantity_when_they_come(
        ticket_first: bool) -> None:
    """A ticket event and the order fact it followed travel on two topics: when the ticket's comes
    first, the line is made with the ticket's units, and the order fact puts the ordered ones
    back and tells the order page; in the usual order the fact changes no line."""
    shop, today = Shop(), day()
    placed = next(e for _, e in today.messages if e.type == "OrderPlaced" and e.key.startswith("O-day1"))
    opened = next(e for _, e in today.messages if e.type == "TicketOpened" and e.key == placed.key)
    for envelope in ([opened, placed] if ticket_first else [placed, opened]):
        await shop.consume("monitoring", envelope)
    told = [(c.line_no, c.quantity, c.state.value, c.ticket_id) for c in shop.sent("LineAfterSalesChanged")]
    ticket = opened.payload.ticket.ticket_id
    assert told[-1] == (1, 2, "IN_PROGRESS", ticket)  # ordered 2, one of them in the ticket
    assert len(told) == (2 if ticket_first else 1)
