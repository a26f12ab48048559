"""Shared message contracts of the after-sales services: envelope, payloads, topic catalogue."""

from . import admin, aftersales, decisions, erp, monitoring, ops, orders, payments, warehouse  # noqa: F401
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
