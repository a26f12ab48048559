"""An order fact or buyer request intake parked because it arrived before what it follows.

Intake parks and retries them; the scheduler expires those that waited too long. Both read the
same ``parked_order_events`` rows, so both use this one record of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from .tables import ParkedOrderEvent


@dataclass(frozen=True)
class Parked:
    id: int
    order_id: str
    event_id: uuid.UUID
    type: str
    value: bytes
    reason: str

    @classmethod
    def of(cls, row: ParkedOrderEvent | Row[Any]) -> Parked:
        return cls(row.id, row.order_id, row.event_id, row.type, row.value, row.reason)
