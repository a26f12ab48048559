"""Dead-letter use cases: record each dead letter, tell ops the counts, replay to the source topic.

Replay publishes the original bytes and key again on the source topic, so the message gets the
same event id and content hash: a consumer that applied it meanwhile drops the copy (inbox), one
that dead-lettered it tries again. A replay is recorded; replaying the same dead letter again
is refused unless forced, and even forced it changes nothing a first replay did not.
An original that was cut (longer than the dead letter keeps) is read back from its source
offset and checked against its SHA-256 before it is sent.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts import Envelope
from contracts.ops import DeadLetter, DeadLetterCount, DeadLetterSummary
from services.common.failures import content_hash
from services.common.kafka import read_at
from services.common.quarantine import DueItem, Quarantine
from services.common.routes import Deps, PeriodicJob, periodic
from services.common.settings import Settings
from services.common.tables import DeadLetterRow

from .repository import DeadLetterRepository, DeadLetterUnitOfWork

__all__ = ["Deps", "Replayed", "original_bytes", "read_from_source", "record", "replay", "summarize"]

SUMMARY_KEY = "dead-letters"


def _storable(text: str | None, encoding: str) -> tuple[str | None, str]:
    """PostgreSQL text holds no NUL character: such an original is kept as base64 of its UTF-8."""
    if text is None or "\x00" not in text:
        return text, encoding
    return base64.b64encode(text.encode()).decode(), "base64"


async def record(envelope: Envelope[DeadLetter], uow: DeadLetterUnitOfWork, deps: Deps) -> None:
    letter = envelope.payload
    value, value_encoding = _storable(letter.original_value, letter.original_encoding)
    key, key_encoding = _storable(letter.original_key, letter.original_key_encoding)
    await uow.dead_letters.record({
        "dead_letter_id": envelope.event_id, "source_topic": letter.source_topic, "partition": letter.partition,
        "offset": letter.offset, "consumer_group": letter.consumer_group, "reason_code": letter.reason_code,
        "reason": letter.reason.replace("\x00", ""), "error_class": letter.error_class, "original_key": key,
        "original_key_encoding": key_encoding, "original_value": value or "", "original_encoding": value_encoding,
        "original_size": letter.original_size,
        "original_sha256": letter.original_sha256, "original_truncated": letter.original_truncated,
        "original_event_id": letter.original_event_id, "original_type": letter.original_type,
        "producer": envelope.producer, "failed_at": letter.failed_at, "summarized": False, "replays": 0})


def summarize(deps: Deps) -> PeriodicJob[DeadLetterUnitOfWork]:
    """Every ``dead_letter_summary_seconds``: one DeadLetterSummary with the counts per reason."""
    async def due(uow: DeadLetterUnitOfWork, skip: Quarantine) -> list[DueItem]:
        pending = await uow.dead_letters.has_unsummarized()
        return [DueItem("summary", SUMMARY_KEY)] if pending else []

    async def run(uow: DeadLetterUnitOfWork, item: DueItem) -> bool:
        counts, since = await uow.dead_letters.unsummarized_counts()
        if not counts or since is None:
            return False
        uow.publish(DeadLetterSummary(
            since=since, until=deps.clock(), total=sum(n for _, _, n in counts),
            counts=[DeadLetterCount(source_topic=t, reason_code=c, count=n) for t, c, n in counts]),
            key=SUMMARY_KEY)
        return True

    return periodic("dead_letter_summary", due, run, deps.settings.dead_letter_summary_seconds)


def original_bytes(row: DeadLetterRow) -> tuple[bytes | None, bytes]:
    """The original key and value as they were on the wire (from the dead letter itself)."""
    key = None
    if row.original_key is not None:
        key = (base64.b64decode(row.original_key) if row.original_key_encoding == "base64"
               else row.original_key.encode())
    value = (base64.b64decode(row.original_value) if row.original_encoding == "base64"
             else row.original_value.encode())
    return key, value


async def read_from_source(settings: Settings, row: DeadLetterRow) -> tuple[bytes | None, bytes]:
    """A cut original, read back from its source offset (while the topic's retention lasts)."""
    if row.partition < 0 or row.offset < 0:
        raise LookupError("this dead letter has no source offset to read the original from")
    record = await read_at(settings, row.source_topic, row.partition, row.offset)
    if record is None:
        raise LookupError("the source offset is no longer in the topic (retention passed)")
    return record.key, record.value or b""


@dataclass(frozen=True)
class Replayed:
    dead_letter_id: uuid.UUID
    outcome: str  # replayed | already replayed | unavailable: …


async def replay(sessions: Any, settings: Settings, send: Callable[[str, bytes | None, bytes], Any],
                 dead_letter_id: uuid.UUID, *, force: bool = False) -> Replayed:
    """Sends one dead letter's original back to its source topic (see the module docstring)."""
    async with sessions() as session, session.begin():
        repo = DeadLetterRepository(session)
        row = await repo.get(dead_letter_id, lock=True)
        if row is None:
            return Replayed(dead_letter_id, "unavailable: no such dead letter")
        if row.replayed_at is not None and not force:
            return Replayed(dead_letter_id, f"already replayed at {row.replayed_at:%Y-%m-%d %H:%M:%S} (use --force)")
        try:
            key, value = await read_from_source(settings, row) if row.original_truncated else original_bytes(row)
        except LookupError as exc:
            return Replayed(dead_letter_id, f"unavailable: {exc}")
        if row.original_sha256 and content_hash(value).hex() != row.original_sha256:
            return Replayed(dead_letter_id, "unavailable: the original does not match its SHA-256")
        await send(row.source_topic, key, value)
        row.replayed_at, row.replays = datetime.now(UTC), row.replays + 1
    return Replayed(dead_letter_id, "replayed")
