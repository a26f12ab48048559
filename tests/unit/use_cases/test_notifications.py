"""The notifications worker on the fakes: what the buyer is told of each change of their ticket,
once per change, and a reminder once ahead of a deadline they must meet (and again only for a
new deadline)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from contracts import Money
from contracts import aftersales as c
from contracts import notifications as n
from services.domain import notifications as rules
from services.domain.model import AfterSalesType, TicketStatus
from services.notifications import service

from .shop import T0, Shop


def view(ticket_id: str, status: c.TicketStatus, *, deadline: object = None, type_: str = "RETURN_AND_REFUND",
         refund: int = 5_000) -> c.TicketView:
    line = c.TicketLineView(line_no=1, sku="SKU-1", quantity=1, cap=Money.cny(refund), refund=Money.cny(refund))
    return c.TicketView(ticket_id=ticket_id, ticket_no=f"AS{ticket_id[:6]}", order_id=f"O-{ticket_id[:6]}",
                        shop_id="shop-1", buyer_id="buyer-1", type=c.AfterSalesType(type_), status=status,
                        lines=[line], refund_total=Money.cny(refund), applied_at=T0,
                        deadline_at=deadline)  # type: ignore[arg-type]


async def move(shop: Shop, ticket: c.TicketView, before: c.TicketStatus, after: c.TicketStatus, role: str = "ops",
               reason: str = "", **changes: object) -> None:
    moved = ticket.model_copy(update={"status": after, **changes})
    await shop.deliver("notifications", c.TicketStatusChanged(
        ticket=moved, from_status=before, to_status=after, actor=c.Actor(role=c.Role(role), id=f"{role}-1"),
        reason=reason), key=ticket.order_id, producer="review")


def told(shop: Shop) -> list[tuple[str, dict[str, str]]]:
    return [(str(m.template), m.params) for m in shop.sent("BuyerNotification")]


async def test_a_return_tells_the_buyer_each_step_that_is_theirs_and_reminds_once_before_the_deadline() -> None:
    shop = Shop()
    ticket = view(uuid.uuid4().hex, c.TicketStatus.PENDING_REVIEW)
    await shop.deliver("notifications", c.TicketOpened(request_id=uuid.uuid4(), ticket=ticket),
                       key=ticket.order_id, producer="intake")
    deadline = shop.now + timedelta(days=7)
    await move(shop, ticket, c.TicketStatus.PENDING_REVIEW, c.TicketStatus.AWAITING_RETURN, deadline_at=deadline)
    assert told(shop) == [("OPENED", {"type": "RETURN_AND_REFUND", "refund": "50.00 CNY"}),
                          ("RETURN_APPROVED", {"deadline": deadline.isoformat()})]

    job = service.remind(shop.deps)
    shop.later(days=5)
    assert await shop.tick("notifications", job) == 0  # two days left: not yet
    shop.later(days=1, hours=1)
    assert await shop.tick("notifications", job) == 1  # 23 hours left
    assert await shop.tick("notifications", job) == 0  # once
    assert told(shop)[-1] == ("RETURN_DEADLINE_REMINDER", {"deadline": deadline.isoformat()})

    await move(shop, ticket, c.TicketStatus.AWAITING_RETURN, c.TicketStatus.AWAITING_RECEIPT, role="buyer")
    await move(shop, ticket, c.TicketStatus.AWAITING_RECEIPT, c.TicketStatus.PENDING_REFUND, role="warehouse")
    await move(shop, ticket, c.TicketStatus.PENDING_REFUND, c.TicketStatus.REFUNDING, role="finance")
    await move(shop, ticket, c.TicketStatus.REFUNDING, c.TicketStatus.COMPLETED, role="system",
               shipping_refund=Money.cny(800))
    assert [t for t, _ in told(shop)] == ["OPENED", "RETURN_APPROVED", "RETURN_DEADLINE_REMINDER", "GOODS_RECEIVED",
                                          "REFUNDED"]
    assert told(shop)[-1][1] == {"amount": "58.00 CNY", "route": "ORIGINAL_PAYMENT"}
    assert shop.db.state.buyer_deadlines == {}  # nothing left to remind of


async def test_a_redelivered_change_is_told_with_the_same_id_and_internal_steps_say_nothing() -> None:
    shop = Shop()
    ticket = view(uuid.uuid4().hex, c.TicketStatus.PENDING_MANAGER, type_="REFUND_ONLY")
    change = c.TicketStatusChanged(ticket=ticket.model_copy(update={"status": c.TicketStatus.CLOSED}),
                                   from_status=c.TicketStatus.PENDING_MANAGER, to_status=c.TicketStatus.CLOSED,
                                   actor=c.Actor(role=c.Role.MANAGER, id="m-1"), reason="amount not justified")
    await move(shop, ticket, c.TicketStatus.PENDING_REFUND, c.TicketStatus.PENDING_REVIEW, role="finance")
    await move(shop, ticket, c.TicketStatus.PENDING_MANAGER, c.TicketStatus.PENDING_REFUND, role="manager")
    assert told(shop) == []  # sent back to ops, a manager's approval: not the buyer's business
    await shop.deliver("notifications", change, key=ticket.order_id, producer="review")
    assert told(shop) == [("REJECTED", {"reason": "amount not justified"})]
    (first,) = shop.sent("BuyerNotification")
    assert first.template == n.NotificationTemplate.REJECTED


S = TicketStatus
MOVES = [  # (type, from, to, who) → what the buyer is told (None: an internal step)
    ("REFUND_ONLY", S.PENDING_REVIEW, S.PENDING_REFUND, "ops", "APPROVED"),
    ("REFUND_ONLY", S.PENDING_REVIEW, S.PENDING_MANAGER, "ops", None),
    ("REFUND_ONLY", S.PENDING_MANAGER, S.PENDING_REFUND, "manager", None),
    ("REFUND_ONLY", S.PENDING_REFUND, S.PENDING_REVIEW, "finance", None),
    ("REFUND_ONLY", S.REFUNDING, S.REFUND_FAILED, "system", None),
    ("REFUND_ONLY", S.REFUND_FAILED, S.REFUNDING, "finance", None),
    ("REFUND_ONLY", S.REFUNDING, S.COMPLETED, "system", "REFUNDED"),
    ("REFUND_ONLY", S.PENDING_REVIEW, S.CLOSED, "ops", "REJECTED"),
    ("REFUND_ONLY", S.PENDING_REVIEW, S.CLOSED, "buyer", "CLOSED"),
    ("RETURN_AND_REFUND", S.AWAITING_RETURN, S.CLOSED, "system", "CLOSED"),
    ("RETURN_AND_REFUND", S.AWAITING_RECEIPT, S.INTERVENTION, "warehouse", "GOODS_RECEIVED"),
    ("RETURN_AND_REFUND", S.INTERVENTION, S.SENDING_BACK, "ops", "GOODS_SENT_BACK"),
    ("EXCHANGE", S.PENDING_REVIEW, S.AWAITING_RETURN, "ops", "RETURN_APPROVED"),
    ("EXCHANGE", S.AWAITING_RECEIPT, S.AWAITING_RESHIPMENT, "warehouse", "GOODS_RECEIVED"),
    ("EXCHANGE", S.AWAITING_RESHIPMENT, S.RESHIPPED, "warehouse", "RESHIPPED"),
    ("EXCHANGE", S.RESHIPPED, S.COMPLETED, "buyer", "COMPLETED"),
    ("REPAIR", S.AWAITING_RECEIPT, S.IN_REPAIR, "warehouse", "GOODS_RECEIVED"),
    ("CANCEL", S.PENDING_REVIEW, S.COMPLETED, "system", "COMPLETED"),
]


def test_each_move_tells_the_buyer_what_is_theirs_to_know() -> None:
    for ticket_type, before, after, who, expected in MOVES:
        notice = rules.on_move(rules.Move(type=AfterSalesType(ticket_type), from_status=before.value,
                                          to_status=after.value, actor_role=who, reason="why", refund_cents=100,
                                          currency="CNY", deadline_at=None))
        assert (notice.template if notice else None) == expected, (ticket_type, before, after, who)


def test_a_repairs_progress_is_told_step_by_step() -> None:
    for to, reason, step in ((S.IN_REPAIR, "DIAGNOSED: worn contact", "DIAGNOSED"),
                             (S.INTERVENTION, "CANNOT_REPAIR: no spare board", "CANNOT_REPAIR")):
        notice = rules.on_move(rules.Move(type=AfterSalesType.REPAIR, from_status="IN_REPAIR", to_status=to.value,
                                          actor_role="warehouse", reason=reason, refund_cents=0, currency="CNY",
                                          deadline_at=None, action="repair_progress"))
        assert notice == rules.Notice("REPAIR_PROGRESS", {"step": step, "note": reason.partition(": ")[2]})
