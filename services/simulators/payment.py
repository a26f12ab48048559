"""The payment-channel simulator. It remembers every refund id it executed (its idempotency
keys) in its own table, so a resent ExecuteRefund never pays twice.

Scenarios (``sim:payment:<order_id>``): ``ok``; ``fail`` (declined, not retryable);
``fail_once`` (retryable failure, then ok); ``timeout_once`` (no answer to the first
attempt, then ok); ``late`` (answers after 3 s). Every answer is signed with
``payment_signing_key_id``, as a real channel signs its notifications.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.dialects.postgresql import insert

from contracts import Envelope, encode, new_envelope
from contracts.payments import ExecuteRefund, RefundFailed, RefundSucceeded
from contracts.signing import signed
from contracts.topics import REFUND_COMMANDS, REFUND_RESULTS
from services.common.routes import Deps, Subscription, route
from services.common.runtime import Context, Worker
from services.common.settings import Settings
from services.common.tables import PaymentChannelRefund
from services.common.uow import SqlUnitOfWork

from . import scenarios


def build_worker(settings: Settings) -> Worker[SqlUnitOfWork]:
    redis = Redis.from_url(settings.redis_url)
    worker: Worker[SqlUnitOfWork]
    key_id = settings.payment_signing_key_id
    secret = settings.payment_keys.get(key_id, "")

    async def on_execute_refund(envelope: Envelope[Any], uow: SqlUnitOfWork, deps: Deps) -> None:
        cmd: ExecuteRefund = envelope.payload
        scenario = await scenarios.get(redis, "payment", cmd.order_id)
        calls = await scenarios.bump(redis, "payment", str(cmd.refund_id))
        if scenario == "fail":
            uow.publish(signed(RefundFailed(refund_id=cmd.refund_id, ticket_id=cmd.ticket_id, order_id=cmd.order_id,
                                            code="DECLINED", message="card account closed", retryable=False),
                               key_id, secret), key=cmd.order_id, cause=envelope)
            return
        if scenario == "fail_once" and calls == 1:
            uow.publish(signed(RefundFailed(refund_id=cmd.refund_id, ticket_id=cmd.ticket_id, order_id=cmd.order_id,
                                            code="CHANNEL_BUSY", message="try again", retryable=True),
                               key_id, secret), key=cmd.order_id, cause=envelope)
            return
        # Execute (or recognise) the refund: the refund id is the idempotency key.
        stmt = insert(PaymentChannelRefund).values(
            refund_id=cmd.refund_id, amount_cents=cmd.amount.cents, channel_ref=f"PAY-{cmd.refund_id.hex[:12]}",
        ).on_conflict_do_update(index_elements=[PaymentChannelRefund.refund_id],
                                set_={"executions": PaymentChannelRefund.executions + 1})
        await uow.session.execute(stmt)
        answer = signed(RefundSucceeded(refund_id=cmd.refund_id, ticket_id=cmd.ticket_id, order_id=cmd.order_id,
                                        amount=cmd.amount, channel_ref=f"PAY-{cmd.refund_id.hex[:12]}",
                                        settled_at=datetime.now(UTC)), key_id, secret)
        if scenario == "timeout_once" and calls == 1:
            return  # the money moved but the answer is lost: only a resend with the same id tells
        if scenario == "late":
            if worker.ctx is None:  # a handler runs only inside the started worker
                raise RuntimeError("the payment channel handled a command before it started")
            asyncio.get_running_loop().create_task(_answer_late(worker.ctx, answer, envelope))
            return
        uow.publish(answer, key=cmd.order_id, cause=envelope)

    async def has_its_key(_: Context[SqlUnitOfWork]) -> None:
        if not secret:
            raise SystemExit("the payment channel signs with AFTERSALES_PAYMENT_SIGNING_KEY_ID, which must name "
                             "one of AFTERSALES_PAYMENT_SIGNING_KEYS")

    worker = Worker("payment-channel", settings,
                    [Subscription(REFUND_COMMANDS, [route(ExecuteRefund, on_execute_refund)])],
                    unit_of_work=SqlUnitOfWork, on_start=has_its_key)
    return worker


async def _answer_late(ctx: Context[SqlUnitOfWork], answer: RefundSucceeded, cause: Envelope[Any]) -> None:
    await asyncio.sleep(3)
    envelope = new_envelope(answer, key=answer.order_id, producer="payment-channel", cause=cause)
    await ctx.producer.send_and_wait(REFUND_RESULTS.name, encode(envelope), key=answer.order_id.encode())
