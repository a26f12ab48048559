"""A valid sample of any registered message, built from its field annotations."""

from __future__ import annotations

import types
import typing
import uuid
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from contracts import Money


def sample(cls: type[BaseModel]) -> BaseModel:
    values = {}
    for name, field in cls.model_fields.items():
        values[name] = _value(field.annotation, field.metadata)
    return cls(**values)


def _value(annotation: Any, metadata: list[Any]) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        return _value(base, list(meta) + metadata)
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in typing.get_args(annotation) if a is not type(None)), metadata)
    if origin is list:
        return [_value(typing.get_args(annotation)[0], [])]
    if origin is dict:
        key, value = typing.get_args(annotation)
        return {_value(key, []): _value(value, [])}
    if annotation is Money:
        return Money(cents=1999)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return next(iter(annotation))
    if annotation is bool:
        return True
    if annotation is int:
        low = next((m.ge for m in metadata if getattr(m, "ge", None) is not None), 1)
        return max(low, 1)
    if annotation is str:
        pattern = next((m.pattern for m in metadata if getattr(m, "pattern", None)), None)
        return "0" * 64 if pattern == r"^[0-9a-f]{64}$" else "S1"  # a SHA-256 in hex, or any short text
    if annotation is uuid.UUID:
        return uuid.uuid4()
    if annotation is datetime or getattr(annotation, "__name__", "") == "AwareDatetime":
        return datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    if annotation is date:
        return date(2026, 11, 23)
    raise TypeError(f"no sample for {annotation!r}")
