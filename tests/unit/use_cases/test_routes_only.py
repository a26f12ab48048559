"""A route's ``only`` must leave out exactly messages its use case would ignore: the runtime skips
them without a transaction, so a message ``only`` refuses must be one the use case does nothing
with. Every ticket event a worker's ``only`` refuses, over every type, pair of statuses and
shipment state, is handed to the use case with a unit of work that fails on any use: none may
touch it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import Money, new_envelope
from contracts import aftersales as c
from services.common.routes import Deps, Route
from services.common.settings import Settings
from services.erp_sync import handlers as erp_handlers
from services.finance import handlers as finance_handlers
from services.review import handlers as review_handlers
from services.settlement import handlers as settlement_handlers
from services.warehouse import handlers as warehouse_handlers

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
FILTERED: list[Route[Any, Any]] = [
    r for handlers in (erp_handlers, finance_handlers, review_handlers, settlement_handlers, warehouse_handlers)
    for sub in handlers.subscriptions() for r in sub.routes if r.only is not None]
DEPS = Deps(Settings(policy=json.dumps({"has_erp": True})), lambda: NOW)  # ERP sync acts for shops with an ERP


class Untouchable:
    """A unit of work whose every use is a failure: what the use case did with a message ``only``
    refused."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the use case used uow.{name} for a message its route's only refuses")


def view(type_: c.AfterSalesType, status: c.TicketStatus, before_shipment: bool, reissue: bool) -> c.TicketView:
    line = c.TicketLineView(line_no=1, sku="SKU-1", quantity=1, cap=Money.cny(5_000), refund=Money.cny(5_000))
    return c.TicketView(ticket_id=uuid.uuid4().hex, ticket_no="AS1", order_id="O-only", shop_id="shop-1",
                        buyer_id="buyer-1", type=type_, status=status, lines=[line], refund_total=Money.cny(5_000),
                        applied_at=NOW, before_shipment=before_shipment, reissue=reissue)


TICKETS = st.builds(view, st.sampled_from(list(c.AfterSalesType)), st.sampled_from(list(c.TicketStatus)),
                    st.booleans(), st.booleans())
EVENTS = st.one_of(
    st.builds(lambda ticket: c.TicketOpened(request_id=uuid.uuid4(), ticket=ticket), TICKETS),
    st.builds(lambda ticket, before: c.TicketStatusChanged(
        ticket=ticket, from_status=before, to_status=ticket.status, actor=c.Actor(role=c.Role.OPS, id="ops-1")),
        TICKETS, st.sampled_from(list(c.TicketStatus))))


def test_the_filtered_routes_are_the_ones_this_test_means() -> None:
    assert {(r.use_case.__module__, r.type_name) for r in FILTERED} == {
        ("services.erp_sync.service", "TicketStatusChanged"), ("services.finance.service", "TicketStatusChanged"),
        ("services.review.service", "TicketOpened"), ("services.review.service", "TicketStatusChanged"),
        ("services.settlement.service", "TicketOpened"), ("services.settlement.service", "TicketStatusChanged"),
        ("services.warehouse.service", "TicketOpened"), ("services.warehouse.service", "TicketStatusChanged")}


@settings(max_examples=300, deadline=None)
@given(EVENTS)
async def test_a_message_only_refuses_is_one_its_use_case_does_nothing_with(event: Any) -> None:
    envelope = new_envelope(event, key="O-only", producer="test")
    for r in FILTERED:
        if r.message is type(event) and not r.acts_on(event):
            await r.use_case(envelope, Untouchable(), DEPS)
