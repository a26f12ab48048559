"""Finance's data: refunds (one per money decision), the per-order refund ledger, compensations.

The ledger row is created from the order projection the first time an order is refunded and
is locked (``FOR UPDATE``) for every reservation, so per-line sums are checked serially.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.quarantine import DueItem, Quarantine
from services.common.tables import CompensationRow, OrderRow, RefundLedgerRow, RefundRow
from services.domain.refunds import LedgerLine, RefundLedger, settlement


class FinanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def order_lines(self, order_id: str) -> list[dict[str, Any]]:
        row = await self.session.get(OrderRow, order_id)
        return list(row.lines) if row else []

    async def ledger(self, order_id: str) -> tuple[RefundLedger, RefundLedgerRow]:
        """The order's ledger, locked; created from the order projection on first use."""
        row = (await self.session.execute(select(RefundLedgerRow).where(
            RefundLedgerRow.order_id == order_id).with_for_update())).scalar_one_or_none()
        if row is None:
            order = await self.session.get(OrderRow, order_id)
            if order is None:
                raise LookupError(f"order {order_id} is not known to finance")
            lines = {str(ln["line_no"]): LedgerLine(ln["paid_cents"], ln["quantity"]).as_dict()
                     for ln in order.lines}
            paid = sum(ln["paid_cents"] for ln in order.lines) + order.shipping_fee_cents
            await self.session.execute(insert(RefundLedgerRow).values(
                order_id=order_id, lines=lines, shipping_fee_cents=order.shipping_fee_cents,
                shipping_refunded_cents=0,
                settlement_cents=settlement(paid, order.platform_subsidy_cents, order.platform_fee_cents),
                close_requested=False).on_conflict_do_nothing())
            row = (await self.session.execute(select(RefundLedgerRow).where(
                RefundLedgerRow.order_id == order_id).with_for_update())).scalar_one()
        ledger = RefundLedger({int(k): LedgerLine(**v) for k, v in row.lines.items()},
                              row.shipping_fee_cents, row.shipping_refunded_cents)
        return ledger, row

    @staticmethod
    def write_ledger(row: RefundLedgerRow, ledger: RefundLedger) -> None:
        row.lines = {str(k): v.as_dict() for k, v in ledger.lines.items()}
        row.shipping_refunded_cents = ledger.shipping_refunded_cents

    async def refund_for_ticket(self, ticket_id: str) -> RefundRow | None:
        return (await self.session.execute(select(RefundRow).where(
            RefundRow.ticket_id == ticket_id).with_for_update())).scalar_one_or_none()

    async def ticket_of_refund(self, refund_id: uuid.UUID) -> str | None:
        """Without a lock: the caller locks the ticket first (finance's lock order)."""
        return (await self.session.execute(select(RefundRow.ticket_id).where(
            RefundRow.refund_id == refund_id))).scalar_one_or_none()

    async def refund(self, refund_id: uuid.UUID) -> RefundRow | None:
        return (await self.session.execute(select(RefundRow).where(
            RefundRow.refund_id == refund_id).with_for_update())).scalar_one_or_none()

    async def add_refund(self, row: RefundRow) -> None:
        """Flushed at once: a later look-up in the same transaction (a batch) must see it."""
        self.session.add(row)
        await self.session.flush()

    async def due_refunds(self, now: datetime, skip: Quarantine, limit: int = 50) -> list[DueItem]:
        rows = (await self.session.execute(
            select(RefundRow.refund_id, RefundRow.order_id)
            .where(RefundRow.status == "PENDING", RefundRow.next_attempt_at <= now,
                   skip.excluding(RefundRow.refund_id))
            .order_by(RefundRow.next_attempt_at).limit(limit))).all()
        return [DueItem(str(refund_id), order_id) for refund_id, order_id in rows]

    async def add_compensation(self, row: CompensationRow) -> bool:
        stmt = insert(CompensationRow).values(
            compensation_id=row.compensation_id, ticket_id=row.ticket_id, order_id=row.order_id,
            coupon_cents=row.coupon_cents, virtual_currency_cents=row.virtual_currency_cents,
        ).on_conflict_do_nothing().returning(CompensationRow.compensation_id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def compensation(self, compensation_id: uuid.UUID) -> CompensationRow | None:
        return await self.session.get(CompensationRow, compensation_id, with_for_update=True)
