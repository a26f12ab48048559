"""The one envelope every message travels in, and the registry that maps a type name to its payload.

Why an envelope: consumers dedupe on ``event_id`` (inbox), trace flows through
``correlation_id``/``causation_id``, and route on ``type`` without knowing the producer.
Payloads are strict (no silent coercion of ``"12"`` or ``12.5`` into money) and tolerant of
unknown fields, so producers can add optional fields without breaking consumers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Cents = Annotated[int, Field(ge=0, le=10**12, strict=True, description="Integer minor units (fen)")]

UnknownMember = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")]
"""A member of an open enum this build does not know yet: kept as the plain string it was sent as."""

OPEN_ENUM = Field(union_mode="left_to_right", json_schema_extra={"x-open-enum": True})
"""Marks an enum field open: ``Annotated[SomeEnum | UnknownMember, OPEN_ENUM]``. A producer may add
members without a new schema version; a consumer acts on the members it knows and passes over
(or dead-letters, where it cannot act) the others. Closed enums (the default) refuse unknown members."""


class Contract(BaseModel):
    """Base of every payload: frozen, strict types, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    event_type: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1


class Money(Contract):
    """An amount of money: integer cents and an ISO currency code, never a float."""

    cents: Cents
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"

    @classmethod
    def cny(cls, cents: int) -> Money:
        return cls(cents=cents)


P = TypeVar("P", bound=Contract)


class Envelope(BaseModel, Generic[P]):
    """Metadata shared by all messages; ``key`` is the order id (the Kafka message key)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    event_id: uuid.UUID = Field(description="Unique per message; consumers dedupe on it")
    type: str = Field(description="Payload type name, e.g. TicketOpened")
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    key: Id = Field(description="Order id; also the Kafka key, so one order stays ordered")
    correlation_id: uuid.UUID = Field(description="Id of the flow this message belongs to")
    causation_id: uuid.UUID | None = Field(default=None, description="event_id that caused it")
    producer: str = Field(max_length=64)
    payload: P


class _Head(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    schema_version: int = Field(ge=1)


class InvalidMessage(Exception):
    """A message that can never be processed: it goes to the dead-letter topic, not to a retry."""

    code = "INVALID_MESSAGE"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedMessage(InvalidMessage):
    code = "MALFORMED_JSON"


class UnknownMessageType(InvalidMessage):
    code = "UNKNOWN_TYPE"


class SchemaViolation(InvalidMessage):
    code = "SCHEMA_VIOLATION"


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_REGISTRY: dict[str, type[Contract]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}
_ENVELOPES: dict[str, type[Envelope[Any]]] = {}


def message(type_name: str, version: int = 1) -> Callable[[type[P]], type[P]]:
    """Class decorator registering a payload under its wire type name and schema version."""

    def register(cls: type[P]) -> type[P]:
        if type_name in _REGISTRY and _REGISTRY[type_name] is not cls:
            raise ValueError(f"message type {type_name} registered twice")
        cls.event_type = type_name
        cls.schema_version = version
        _REGISTRY[type_name] = cls
        _ENVELOPES[type_name] = Envelope[cls]  # type: ignore[valid-type]
        return cls

    return register


def upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Registers a function turning payload version ``from_version`` into ``from_version + 1``."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(type_name, from_version)] = fn
        return fn

    return register


def registry() -> dict[str, type[Contract]]:
    return dict(_REGISTRY)


def envelope_model(type_name: str) -> type[Envelope[Any]]:
    return _ENVELOPES[type_name]


def new_envelope(
    payload: Contract,
    *,
    key: str,
    producer: str,
    cause: Envelope[Any] | None = None,
    correlation_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope[Any]:
    """Wraps a payload; a message caused by another inherits its correlation id."""
    if not payload.event_type:
        raise ValueError(f"{type(payload).__name__} is not a registered message")
    return _ENVELOPES[payload.event_type](
        event_id=event_id or uuid.uuid4(),
        type=payload.event_type,
        schema_version=payload.schema_version,
        occurred_at=occurred_at or datetime.now(UTC),
        key=key,
        correlation_id=correlation_id or (cause.correlation_id if cause else uuid.uuid4()),
        causation_id=cause.event_id if cause else None,
        producer=producer,
        payload=payload,
    )


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode()


def describe_errors(error: ValidationError) -> str:
    """A readable reason that names fields and problems but never echoes input values (PII)."""
    parts = []
    for item in error.errors(include_input=False, include_url=False, include_context=False)[:10]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def decode(raw: bytes | None) -> Envelope[Any]:
    """Parses bytes from Kafka into a typed envelope, upcasting older schema versions.

    Raises an ``InvalidMessage`` subclass with a readable reason; never returns half a message.
    """
    if not raw:
        raise MalformedMessage("empty message value")
    try:
        head = _Head.model_validate_json(raw)
    except ValidationError as exc:
        kinds = {e["type"] for e in exc.errors()}
        if "json_invalid" in kinds or "json_type" in kinds:
            raise MalformedMessage("value is not a JSON object") from None
        raise SchemaViolation(describe_errors(exc)) from None
    cls = _REGISTRY.get(head.type)
    if cls is None:
        raise UnknownMessageType(f"unknown message type {head.type[:64]!r}")
    if head.schema_version > cls.schema_version:
        raise SchemaViolation(
            f"{head.type} schema version {head.schema_version} is newer than this consumer "
            f"understands ({cls.schema_version})"
        )
    if head.schema_version < cls.schema_version:
        raw = _upcast(raw, head.type, head.schema_version, cls.schema_version)
    try:
        return _ENVELOPES[head.type].model_validate_json(raw)
    except ValidationError as exc:
        raise SchemaViolation(describe_errors(exc)) from None


def _upcast(raw: bytes, type_name: str, version: int, target: int) -> bytes:
    doc = orjson.loads(raw)
    payload = doc.get("payload")
    if not isinstance(payload, dict):
        raise SchemaViolation("payload: must be an object")
    for v in range(version, target):
        step = _UPCASTERS.get((type_name, v))
        if step is None:
            raise SchemaViolation(f"no upcaster for {type_name} v{v} -> v{v + 1}")
        payload = step(payload)
    doc["payload"] = payload
    doc["schema_version"] = target
    return orjson.dumps(doc)
