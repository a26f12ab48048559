"""Traces follow the envelope's ids: a chain of messages handled anywhere is one trace whose
handling spans nest as the messages caused each other, each handler's staged messages are its
``publish`` children, and log lines carry the trace id."""

from __future__ import annotations

import structlog
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts import new_envelope
from contracts.ops import OpsAlert, Severity
from services.common.settings import Settings
from services.common.tracing import Tracing, span_id_of, trace_id_of, tracer_provider


def alert(order_id: str) -> OpsAlert:
    return OpsAlert(kind="TEST", severity=Severity.INFO, message="probe", order_id=order_id)


def test_no_endpoint_means_no_sdk_and_no_spans_but_logs_still_carry_the_trace_id() -> None:
    assert tracer_provider(Settings(otlp_endpoint=None), "intake") is None
    tracing = Tracing(None, "intake", "aftersales.intake")
    placed = new_envelope(alert("O-1"), key="O-1", producer="order-system")
    with tracing.handling(placed, "orders.events", 0, 7) as span:
        assert not span.is_recording()
        bound = structlog.contextvars.get_contextvars()
        assert bound["trace_id"] == f"{placed.correlation_id.int:032x}"
        assert bound["span_id"] == f"{span_id_of(placed.event_id):016x}"
    structlog.contextvars.clear_contextvars()


def test_a_chain_of_messages_is_one_trace_nested_by_causation_across_workers() -> None:
    exported = InMemorySpanExporter()
    provider = tracer_provider(Settings(otlp_endpoint=None), "tests", SimpleSpanProcessor(exported))
    intake, review = Tracing(provider, "intake", "g.intake"), Tracing(provider, "review", "g.review")
    placed = new_envelope(alert("O-2"), key="O-2", producer="order-system")
    opened = new_envelope(alert("O-2"), key="O-2", producer="intake", cause=placed)
    decided = new_envelope(alert("O-2"), key="O-2", producer="review", cause=opened)

    with intake.handling(placed, "orders.events", 0, 1):
        intake.published([opened])
    with review.handling(opened, "aftersales.tickets", 2, 5):
        review.published([decided])
    structlog.contextvars.clear_contextvars()

    spans = {span.name + ":" + str(span.attributes.get("messaging.message.id")): span
             for span in exported.get_finished_spans()}
    handled_placed = spans[f"handle OpsAlert:{placed.event_id}"]
    handled_opened = spans[f"handle OpsAlert:{opened.event_id}"]
    published_opened = spans[f"publish OpsAlert:{opened.event_id}"]
    published_decided = spans[f"publish OpsAlert:{decided.event_id}"]
    assert {span.context.trace_id for span in spans.values()} == {trace_id_of(placed.correlation_id)}
    assert handled_placed.parent is None  # the flow's first message
    assert handled_placed.context.span_id == span_id_of(placed.event_id)
    assert handled_opened.context.span_id == span_id_of(opened.event_id)
    assert handled_opened.parent is not None
    assert handled_opened.parent.span_id == span_id_of(placed.event_id)  # in another process, by the ids alone
    assert published_opened.parent is not None
    assert published_opened.parent.span_id == handled_placed.context.span_id
    assert published_decided.parent is not None
    assert published_decided.parent.span_id == handled_opened.context.span_id
    assert handled_opened.attributes["messaging.destination.name"] == "aftersales.tickets"
    assert handled_opened.resource.attributes["service.name"] == "tests"


def test_a_failing_handler_ends_its_span_with_the_error() -> None:
    exported = InMemorySpanExporter()
    tracing = Tracing(tracer_provider(Settings(), "tests", SimpleSpanProcessor(exported)), "finance", "g")
    envelope = new_envelope(alert("O-3"), key="O-3", producer="review")
    try:
        with tracing.handling(envelope, "aftersales.decisions", 0, 0):
            raise ValueError("boom")
    except ValueError:
        pass
    structlog.contextvars.clear_contextvars()
    (span,) = exported.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
