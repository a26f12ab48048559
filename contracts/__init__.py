"""Shared message contracts of the after-sales services: envelope, payloads, topic catalogue."""

from . import (  # noqa: F401
    admin,
    aftersales,
    decisions,
    erp,
    monitoring,
    notifications,
    ops,
    orders,
    payments,
    warehouse,
)
from .envelope import (
    Contract,
    Envelope,
    InvalidMessage,
    MalformedMessage,
    Money,
    SchemaViolation,
    UnknownMessageType,
    decode,
    encode,
    new_envelope,
)
from .topics import CATALOGUE, Topic, topic_of

__all__ = [
    "CATALOGUE", "Contract", "Envelope", "InvalidMessage", "MalformedMessage", "Money",
    "SchemaViolation", "Topic", "UnknownMessageType", "decode", "encode", "new_envelope", "topic_of",
]
