"""ERP acknowledgements: duplicates, unknown orders and late or out-of-order answers do no harm."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts import new_envelope
from contracts.erp import ErpOrderAcknowledged
from services.common.runtime import Unprocessable
from services.common.tables import ErpOrderRow
from services.erp_sync import service as erp
from services.erp_sync.repository import SqlErpUnitOfWork

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def ack(sessions, stack, erp_order_id, order_id="O-erp", accepted=True, error=""):  # type: ignore[no-untyped-def]
    msg = ErpOrderAcknowledged(erp_order_id=erp_order_id, order_id=order_id, accepted=accepted,
                               erp_ref="ERP-1" if accepted else None, error=error)
    async with SqlErpUnitOfWork(sessions, "erp_sync") as uow:
        await erp.on_ack(new_envelope(msg, key=order_id, producer="erp"), uow,
                         erp.Deps(stack, lambda: datetime.now(UTC)))
        await uow.commit()


async def sent_order(sessions) -> uuid.UUID:  # type: ignore[no-untyped-def]
    row_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        session.add(ErpOrderRow(erp_order_id=row_id, shop_id="shop-erp", ticket_id=f"T-{row_id.hex[:6]}",
                                ticket_no="AS7", order_id="O-erp", kind="RETURN_RECEIPT",
                                lines=[{"sku": "SKU-1", "quantity": 1}], status="SENT", attempts=1,
                                next_attempt_at=datetime.now(UTC), last_error=""))
    return row_id


async def status(sessions, row_id):  # type: ignore[no-untyped-def]
    async with sessions() as session:
        row = await session.get(ErpOrderRow, row_id)
        return row.status, row.erp_ref, row.acknowledged_at


async def test_duplicate_and_late_failure_acks_leave_an_acknowledged_order_alone(stack, sessions):
    row_id = await sent_order(sessions)
    await ack(sessions, stack, row_id)
    first = await status(sessions, row_id)
    await ack(sessions, stack, row_id)  # duplicate
    await ack(sessions, stack, row_id, accepted=False, error="late failure")  # out of order
    assert await status(sessions, row_id) == first
    assert first[0] == "ACKNOWLEDGED"


async def test_a_refusal_schedules_a_retry_and_a_later_success_wins(stack, sessions):
    row_id = await sent_order(sessions)
    await ack(sessions, stack, row_id, accepted=False, error="ERP busy")
    async with sessions() as session:
        row = await session.get(ErpOrderRow, row_id)
        assert row.status == "SENT"
        assert row.last_error == "ERP busy"
        assert row.next_attempt_at is not None
    await ack(sessions, stack, row_id)
    assert (await status(sessions, row_id))[0] == "ACKNOWLEDGED"


async def test_an_ack_for_an_unknown_order_is_dead_lettered(stack, sessions):
    with pytest.raises(Unprocessable, match="unknown ERP order"):
        await ack(sessions, stack, uuid.uuid4())
