"""Traces across workers, carried by the envelope's own ids (no extra header to lose).

Every message already names its flow (``correlation_id``) and the message whose handling
produced it (``causation_id``). A worker handling message E opens a span whose trace id is E's
correlation id and whose span id comes from E's event id; its parent is the span that handled E's
cause (span id from the causation id, in the same trace). So a refund's journey (order placed →
ticket opened → approved → refund executed → refunded → closed) is one trace whose spans nest as
the messages caused each other, across processes, even through the outbox (which may publish a
message long after its transaction), a redelivery or a replay. Each message the handler staged
gets a ``publish`` span under the handling span.

Spans are exported only when ``AFTERSALES_OTLP_ENDPOINT`` is set (OTLP over HTTP, batched off the
hot path); otherwise no SDK is installed and the API's no-op tracer costs next to nothing. Log
lines carry the trace id either way (``trace_id``, the correlation id as 32 hex digits), so a log
search and a trace view find the same flow.

Why not FastStream's OpenTelemetry middleware: it wraps FastStream's per-message subscriber and
its own headers; these workers handle a fetched batch in one transaction (``runtime``) and the
ids that link messages are in the envelope, where every producer, simulator and tool sets them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from contracts import Envelope
from contracts.topics import topic_of

from .settings import Settings

_LOW_64 = (1 << 64) - 1
_NEXT_IDS: ContextVar[tuple[int, int] | None] = ContextVar("next_trace_ids", default=None)


def trace_id_of(correlation_id: uuid.UUID) -> int:
    return correlation_id.int or 1  # an all-zero id is invalid in OpenTelemetry


def span_id_of(event_id: uuid.UUID) -> int:
    """The handling span's id of a message: the low 64 bits of its event id."""
    return (event_id.int & _LOW_64) or 1


class EnvelopeIds(IdGenerator):
    """Random ids, except for a span that handles a message (see ``handling``)."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        ids = _NEXT_IDS.get()
        return ids[1] if ids else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        ids = _NEXT_IDS.get()
        return ids[0] if ids else self._random.generate_trace_id()


def tracer_provider(settings: Settings, service: str, *processors: SpanProcessor) -> TracerProvider | None:
    """The process's provider: None (no-op tracing) unless an OTLP endpoint is set or a test
    brings its own ``processors``."""
    if not settings.otlp_endpoint and not processors:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=EnvelopeIds())
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


class Tracing:
    """A worker's tracer; with no provider, spans are the API's non-recording ones."""

    def __init__(self, provider: TracerProvider | None, worker: str, group: str) -> None:
        self.provider = provider
        self.worker, self.group = worker, group
        self.tracer = (provider or trace.NoOpTracerProvider()).get_tracer("aftersales.runtime")

    @contextlib.contextmanager
    def handling(self, envelope: Envelope[Any], topic: str, partition: int, offset: int) -> Iterator[Any]:
        """The span of one message's handling, child of its cause's; binds the trace id to logs."""
        structlog.contextvars.bind_contextvars(trace_id=f"{trace_id_of(envelope.correlation_id):032x}",
                                               span_id=f"{span_id_of(envelope.event_id):016x}")
        if self.provider is None:  # nothing records spans: building no-op ones cost a tenth of a relay's time
            yield trace.INVALID_SPAN  # the API's non-recording span, shared
            return
        parent = None
        if envelope.causation_id is not None:
            parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
                trace_id=trace_id_of(envelope.correlation_id), span_id=span_id_of(envelope.causation_id),
                is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))))
        token = _NEXT_IDS.set((trace_id_of(envelope.correlation_id), span_id_of(envelope.event_id)))
        try:
            span = self.tracer.start_span(f"handle {envelope.type}", context=parent, kind=SpanKind.CONSUMER,
                                          attributes={"messaging.system": "kafka",
                                                      "messaging.destination.name": topic,
                                                      "messaging.kafka.destination.partition": partition,
                                                      "messaging.kafka.message.offset": offset,
                                                      "messaging.consumer.group.name": self.group,
                                                      "messaging.message.id": str(envelope.event_id),
                                                      "aftersales.worker": self.worker,
                                                      "aftersales.order_id": envelope.key})
        finally:
            _NEXT_IDS.reset(token)
        with trace.use_span(span, end_on_exit=True, record_exception=True, set_status_on_exception=True):
            yield span

    def published(self, staged: list[Envelope[Any]]) -> None:
        """One ``publish`` span per message the handler staged, under the current handling span
        (the outbox sends it after the commit)."""
        if self.provider is None:
            return
        for envelope in staged:
            try:
                topic = topic_of(type(envelope.payload)).name
            except KeyError:  # a tool's or a test's own message type
                topic = ""
            with self.tracer.start_as_current_span(
                    f"publish {envelope.type}", kind=SpanKind.PRODUCER,
                    attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                                "messaging.message.id": str(envelope.event_id),
                                "aftersales.order_id": envelope.key}):
                pass

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # flushes what the batch processor holds
