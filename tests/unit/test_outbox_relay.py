"""What the outbox relay holds in memory, without Kafka or PostgreSQL (its sending is tested in
``tests/integration/test_outbox_relay.py``)."""

import asyncio
from typing import Any

from services.common.outbox import OutboxRelay


def row(n: int) -> dict[str, Any]:
    return {"producer": "t", "topic": "t", "key": "O-1", "event_id": n, "type": "T", "value": b"{}"}


async def test_a_relay_that_is_not_running_holds_nothing_handed_over():
    """A rebuild drives the workers without their relays: what they hand over waits in the table,
    which the rebuild drains itself, instead of piling up in memory."""
    relay = OutboxRelay("t", sessions=None, producer=None)  # type: ignore[arg-type]  # neither is reached
    relay.hand_over([row(1), row(2)])
    assert relay._handed == []
    await asyncio.wait_for(relay.flush(timeout=5), 1)  # nothing to wait for
