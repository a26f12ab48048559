"""The upstream order system simulator: closes orders when asked (publishes OrderClosed), and,
like the real one, refuses to close a paid order because its payment timed out: it reads its
own order facts (the payments it took) into ``sim_order_payments``. Its order page shows each
line's after-sales label (``sim_order_line_labels``, from monitoring's line states).

A passive cancel (a CloseOrder without a ticket) reaching it before it has read the order's
OrderPaid would still close; the facts are published together, so that window is a few ms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from contracts import Envelope
from contracts.monitoring import LineAfterSalesChanged
from contracts.orders import CloseOrder, OrderClosed, OrderPaid
from contracts.topics import LINE_STATES, ORDER_COMMANDS, ORDER_EVENTS
from services.common.logging import get_logger
from services.common.routes import Deps, Subscription, route
from services.common.runtime import Worker
from services.common.settings import Settings
from services.common.tables import SimOrderLineLabel, SimOrderPayment
from services.common.uow import SqlUnitOfWork

log = get_logger("order-system")


def build_worker(settings: Settings) -> Worker[SqlUnitOfWork]:
    async def on_order_paid(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        paid: OrderPaid = envelope.payload
        await uow.session.execute(insert(SimOrderPayment).values(
            order_id=paid.order_id, paid_at=paid.paid_at).on_conflict_do_nothing())

    async def on_close_order(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        cmd: CloseOrder = envelope.payload
        if cmd.ticket_id is None and await uow.session.get(SimOrderPayment, cmd.order_id) is not None:
            log.info("close_refused_order_paid", order_id=cmd.order_id)
            return
        uow.publish(OrderClosed(order_id=cmd.order_id, closed_at=datetime.now(UTC), reason=cmd.reason),
                    key=cmd.order_id, cause=envelope)

    async def on_line_state(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        line: LineAfterSalesChanged = envelope.payload
        values = {"state": line.state.value, "label": line.label, "refunded_units": line.refunded_units,
                  "refunded_cents": line.refunded.cents}
        await uow.session.execute(insert(SimOrderLineLabel).values(
            order_id=line.order_id, line_no=line.line_no, **values).on_conflict_do_update(
            index_elements=["order_id", "line_no"], set_=values))

    return Worker("order-system", settings, [
        Subscription(ORDER_COMMANDS, [route(CloseOrder, on_close_order)]),
        Subscription(ORDER_EVENTS, [route(OrderPaid, on_order_paid)]),
        Subscription(LINE_STATES, [route(LineAfterSalesChanged, on_line_state)]),
    ], unit_of_work=SqlUnitOfWork, prompt=False)  # an outside system's pace, not a buyer's
