"""Open enums (``x-open-enum`` in the contract): a member this build does not know yet reaches the
use cases as a plain string; each consumer passes over what it has no part in, and acts safely
where it must act. Closed enums still refuse unknown members (see tests/contract)."""

from __future__ import annotations

import orjson

from contracts import aftersales as c
from contracts import decisions as d
from contracts import decode, encode, new_envelope
from contracts import warehouse as w
from services.domain.model import InterceptState, TicketStatus

from .shop import Shop


def from_a_newer_producer(payload: object, **changes: str) -> object:
    """The payload as a producer that knows more members would send it, decoded by this build."""
    doc = orjson.loads(encode(new_envelope(payload, key="O-1", producer="review")))  # type: ignore[arg-type]
    for field, value in changes.items():
        target = doc["payload"]
        *path, last = field.split(".")
        for step in path:
            target = target[step]
        target[last] = value
    return decode(orjson.dumps(doc)).payload


async def test_a_transition_into_a_status_unknown_here_is_passed_over_by_every_ticket_consumer() -> None:
    shop = Shop(shop_policies={"shop-1": {"has_erp": True}})
    ticket_id = await shop.ask(await shop.order(state="COMPLETED"), "RETURN_AND_REFUND")
    await shop.decide(d.ApproveTicket, ticket_id, "ops", "ops-1")
    known = shop.last("TicketStatusChanged")
    newer = from_a_newer_producer(known, to_status="AWAITING_PICKUP", **{"ticket.status": "AWAITING_PICKUP"})
    assert newer.to_status == "AWAITING_PICKUP"
    assert not isinstance(newer.to_status, c.TicketStatus)
    sent_before = len(shop.db.state.outbox)
    for worker in ("finance", "warehouse", "erp_sync"):
        await shop.deliver(worker, newer, key=known.ticket.order_id)
    assert len(shop.db.state.outbox) == sent_before  # nothing started, nothing dead-lettered
    assert shop.ticket(ticket_id).status == TicketStatus.AWAITING_RETURN


async def test_an_intercept_outcome_unknown_here_is_not_taken_for_a_stopped_parcel() -> None:
    shop = Shop()
    order_id = await shop.order(state="PAID")
    ticket_id = await shop.ask(order_id)
    opened = shop.db.sent("TicketOpened")[-1]
    await shop.deliver("review", opened.payload, key=order_id, cause=opened)
    answer = from_a_newer_producer(w.InterceptResult(ticket_id=ticket_id, order_id=order_id,
                                                     outcome=w.InterceptOutcome.INTERCEPTED, decided_at=shop.now),
                                   outcome="PARTLY_INTERCEPTED")
    await shop.deliver("review", answer, key=order_id, producer="wms")
    await shop.deliver("warehouse", answer, key=order_id, producer="wms")
    assert shop.ticket(ticket_id).intercept == InterceptState.ALREADY_DISPATCHED  # a person reviews
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REVIEW
    assert shop.db.state.intercepts[ticket_id]["outcome"] == "PARTLY_INTERCEPTED"
