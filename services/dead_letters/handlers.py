"""Dead-letter subscribers: every DeadLetter on the DLQ topic is recorded once."""

from __future__ import annotations

from services.common.runtime import Handler, bound

from . import service
from .service import Deps


def dlq_handlers(deps: Deps) -> dict[str, Handler]:
    return {"DeadLetter": bound(deps, service.record)}
