"""Two workers on the real Kafka and PostgreSQL: the second handles what the first published
through its outbox, and its span is the child of the first's handling span in one trace, found
from the envelope's ids alone."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts import encode, new_envelope
from contracts.ops import OpsAlert, Severity
from services.common.bus import Bus
from services.common.routes import Subscription, route
from services.common.tracing import span_id_of, trace_id_of, tracer_provider

from .helpers import eventually, new_topic, plain_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")


def alert(order_id: str) -> OpsAlert:
    return OpsAlert(kind="TEST", severity=Severity.INFO, message="traced", order_id=order_id)


async def test_a_message_handled_by_two_workers_through_the_outbox_is_one_nested_trace(stack, sessions):
    first, second = await new_topic(stack, partitions=2), await new_topic(stack, partitions=2)
    exported = InMemorySpanExporter()
    provider = tracer_provider(stack, "tests", SimpleSpanProcessor(exported))
    seen: list[Any] = []

    async def forward(envelope: Any, uow: Any, deps: Any) -> None:
        uow.publish(alert(envelope.key), key=envelope.key, cause=envelope, topic=second)

    async def arrive(envelope: Any, uow: Any, deps: Any) -> None:
        seen.append(envelope)

    run = uuid.uuid4().hex[:6]
    forwarder = plain_worker(f"t-trace-a-{run}", stack, [Subscription(first, [route(OpsAlert, forward)])],
                             traces=provider)
    receiver = plain_worker(f"t-trace-b-{run}", stack, [Subscription(second, [route(OpsAlert, arrive)])],
                            traces=provider)
    apps = [forwarder.build_app(), receiver.build_app()]
    for app in apps:
        await app.start()
    try:
        placed = new_envelope(alert(f"O-{run}"), key=f"O-{run}", producer="t")
        async with Bus(stack) as bus:
            await bus.send_raw(first, encode(placed), key=placed.key)

        async def arrived() -> bool:
            return bool(seen)
        await eventually(arrived, timeout=30)
    finally:
        for app in apps:
            await app.stop()
    (forwarded,) = seen
    assert (forwarded.causation_id, forwarded.correlation_id) == (placed.event_id, placed.correlation_id)
    spans = {(s.name, s.attributes.get("aftersales.worker") or s.attributes.get("messaging.message.id")): s
             for s in exported.get_finished_spans() if s.context.trace_id == trace_id_of(placed.correlation_id)}
    handled_first = spans[("handle OpsAlert", forwarder.name)]
    handled_second = spans[("handle OpsAlert", receiver.name)]
    published = spans[("publish OpsAlert", str(forwarded.event_id))]
    assert handled_first.parent is None
    assert handled_first.context.span_id == span_id_of(placed.event_id)
    assert published.parent is not None
    assert published.parent.span_id == handled_first.context.span_id
    assert handled_second.parent is not None
    assert handled_second.parent.span_id == handled_first.context.span_id
    assert handled_second.attributes["messaging.destination.name"] == second
