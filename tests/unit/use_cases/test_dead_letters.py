"""The dead-letter worker's use cases on the fakes: each letter recorded once, counts for ops."""

from __future__ import annotations

import uuid

from contracts.ops import DeadLetter
from services.dead_letters.service import summarize

from .shop import Shop


def letter(shop: Shop, reason: str, value: str = '{"x": 1}') -> DeadLetter:
    return DeadLetter(source_topic="aftersales.requests", partition=0, offset=7, consumer_group="aftersales.intake",
                      error_class=reason, reason_code=reason, reason="refused", original_key="O-1",
                      original_value=value, original_size=len(value), original_sha256="0" * 64,
                      original_event_id=uuid.uuid4(), original_type="RequestAfterSales", attempts=1,
                      failed_at=shop.now)


async def test_a_letter_is_recorded_once_and_counted_once_for_ops() -> None:
    shop = Shop()
    first = letter(shop, "SCHEMA")
    await shop.deliver("dead_letters", first, key="O-1", producer="intake")
    await shop.deliver("dead_letters", letter(shop, "SCHEMA"), key="O-1", producer="intake")
    await shop.deliver("dead_letters", letter(shop, "UNKNOWN_TICKET"), key="O-1", producer="warehouse")
    assert len(shop.db.state.dead_letters) == 3
    job = summarize(shop.deps)
    assert await shop.tick("dead_letters", job) == 1
    summary = shop.last("DeadLetterSummary")
    assert summary.total == 3
    assert {(c.reason_code, c.count) for c in summary.counts} == {("SCHEMA", 2), ("UNKNOWN_TICKET", 1)}
    assert await shop.tick("dead_letters", job) == 0  # nothing new: no second summary


async def test_a_nul_character_in_the_original_is_stored_as_base64() -> None:
    shop = Shop()
    await shop.deliver("dead_letters", letter(shop, "DATA_ERROR", value="a\x00b"), key="O-1", producer="intake")
    (stored,) = shop.db.state.dead_letters.values()
    assert stored["original_encoding"] == "base64"
    assert "\x00" not in stored["original_value"]
