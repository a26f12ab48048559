"""One classification of what can go wrong while handling a message, used by the whole runtime.

Why one place: a message that can never apply must leave the partition at once (dead letter or
rejection), and an outage must never send a valid message there. Deciding that in each handler
is how the two got mixed up (a 5 s PostgreSQL restart used to dead-letter valid messages, while
a NUL byte in a note was retried five times). The rule, after arroyo's:

- **infrastructure** (PostgreSQL, Kafka or Redis unreachable, timeouts, deadlocks, serialization
  failures, an optimistic-lock conflict): retry with capped backoff for as long as it lasts,
  never a dead letter, never an offset commit past the message;
- **conflict** (a unique key taken by a concurrent writer): retried a few times, because the
  retry normally sees the winner's row; if it keeps happening it is the message's own fault;
- **message** (everything else: undecodable, schema, data the database refuses, a handler that
  trips over this input): a dead letter at once, with a reason built from the error class and
  SQLSTATE, never from the error's text (which may carry SQL parameters or input).
"""

from __future__ import annotations

import hashlib
import traceback
from enum import StrEnum

from aiokafka.errors import KafkaError
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors


class Failure(StrEnum):
    INFRASTRUCTURE = "INFRASTRUCTURE"
    CONFLICT = "CONFLICT"
    MESSAGE = "MESSAGE"


class ConcurrentUpdate(Exception):
    """A row changed between reading and writing it (optimistic version check): retry."""


# SQLSTATE classes that say nothing about the message: connection (08), transaction rollback
# (40: serialization failure, deadlock), insufficient resources (53), operator intervention
# (57: admin shutdown, cannot connect now, query cancelled), system error (58), lock timeout.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
_TRANSIENT_SQLSTATES = ("55P03", "55006")
_UNIQUE_VIOLATION = "23505"

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, KafkaError, ConcurrentUpdate,
    redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.BusyLoadingError,
    sa_errors.OperationalError, sa_errors.InterfaceError, sa_errors.DisconnectionError,
    sa_errors.TimeoutError,
)


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL error code behind a SQLAlchemy or asyncpg error, if there is one."""
    for candidate in (getattr(exc, "orig", None), exc, exc.__cause__):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def classify(exc: BaseException) -> Failure:
    code = sqlstate(exc)
    if code is not None:
        if code[:2] in _TRANSIENT_SQLSTATE_CLASSES or code in _TRANSIENT_SQLSTATES:
            return Failure.INFRASTRUCTURE
        if code == _UNIQUE_VIOLATION:
            return Failure.CONFLICT
        return Failure.MESSAGE
    if isinstance(exc, sa_errors.DBAPIError) and exc.connection_invalidated:
        return Failure.INFRASTRUCTURE
    if isinstance(exc, _TRANSIENT_TYPES):
        return Failure.INFRASTRUCTURE
    # asyncpg's own connection errors, when they reach us unwrapped
    if type(exc).__module__.startswith("asyncpg") and "Connection" in type(exc).__name__:
        return Failure.INFRASTRUCTURE
    return Failure.MESSAGE


def describe(exc: BaseException) -> str:
    """What may be logged or put in a dead letter about an error: its class and SQLSTATE only."""
    code = sqlstate(exc)
    name = type(exc).__name__
    orig = getattr(exc, "orig", None)
    if orig is not None:
        name = f"{name}({type(orig).__name__})"
    return f"{name} sqlstate={code}" if code else name


def safe_traceback(exc: BaseException) -> str:
    """Where an error happened (files, lines, functions) without its message, which may hold input."""
    frames = traceback.extract_tb(exc.__traceback__)[-8:]
    where = " <- ".join(f"{f.name}@{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames))
    return f"{describe(exc)} at {where}" if where else describe(exc)


def content_hash(value: bytes | None) -> bytes:
    return hashlib.sha256(value or b"").digest()
