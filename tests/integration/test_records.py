"""Warehouse records listed per ticket, sku and day; ERP orders resent by hand after giving up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.common.tables import ErpOrderRow, OutboxRow, ReceiptRow
from services.erp_sync import service as erp
from services.erp_sync.repository import SqlErpUnitOfWork
from services.warehouse.repository import WarehouseRecords

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_receipts_are_listed_per_ticket_sku_and_day(sessions):
    ticket, sku = f"T-{uuid.uuid4().hex[:8]}", f"SKU-{uuid.uuid4().hex[:6]}"
    day = datetime(2026, 3, 14, 9, tzinfo=UTC)
    async with sessions() as session, session.begin():
        for offset, ticket_id in ((0, ticket), (1, ticket), (30, "T-other")):
            session.add(ReceiptRow(receipt_id=uuid.uuid4(), ticket_id=ticket_id, ticket_no="AS1", order_id="O1",
                                   receipt_type="RETURN_RECEIPT", lines=[{"sku": sku, "quantity": 1}],
                                   inspection="PASSED", operator="wh", received_at=day + timedelta(hours=offset)))
    async with sessions() as session:
        repo = WarehouseRecords(session)
        assert len(await repo.receipts(ticket_id=ticket)) == 2
        assert len(await repo.receipts(sku=sku)) == 3
        on_day = await repo.receipts(sku=sku, day=day.date())
        assert [r.ticket_id for r in on_day] == [ticket, ticket]


async def test_a_failed_erp_order_can_be_resent_by_hand(stack, sessions):
    row_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        session.add(ErpOrderRow(erp_order_id=row_id, shop_id="shop-erp", ticket_id=f"T-{row_id.hex[:6]}",
                                ticket_no="AS9", order_id="O9", kind="RETURN_RECEIPT",
                                lines=[{"sku": "SKU-1", "quantity": 1}], status="FAILED", attempts=5,
                                last_error="no answer"))
    deps = erp.Deps(stack, lambda: datetime.now(UTC))
    producer = f"erp_sync-test-{row_id.hex[:8]}"
    async with SqlErpUnitOfWork(sessions, producer) as uow:
        assert await erp.resend(uow, deps, row_id)
        await uow.commit()
    async with SqlErpUnitOfWork(sessions, producer) as uow:
        assert not await erp.resend(uow, deps, row_id)  # only FAILED orders
    async with sessions() as session:
        row = await session.get(ErpOrderRow, row_id)
        sent = (await session.execute(select(OutboxRow).where(OutboxRow.producer == producer))).scalars().all()
    assert row.status == "SENT"
    assert row.attempts == 1
    assert [o.type for o in sent] == ["ErpOrderRequested"]
