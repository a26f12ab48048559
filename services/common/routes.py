"""What a worker declares, apart from how it is delivered: which message type goes to which use
case on which topic, its periodic jobs, and the one dependency container its use cases get.

Each route names its message type, so mypy checks that a use case taking
``Envelope[TicketStatusChanged]`` is registered for ``TicketStatusChanged`` and nothing else,
and a subscription refuses (at build time) a type its topic does not carry. The runtime
(``runtime.Worker``) turns the declarations into delivery: inbox, unit of work, rejection,
dead letter, batching.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from contracts import Contract, Envelope
from contracts.topics import BY_NAME, Topic
from services.domain.errors import DomainError

from .quarantine import DueItem, Quarantine
from .settings import Settings
from .uow import UnitOfWork

M = TypeVar("M", bound=Contract)
U = TypeVar("U", bound=UnitOfWork)
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    """Everything a use case needs besides its message and unit of work: settings and a clock
    (a test sets the clock; production reads the system's)."""

    settings: Settings
    clock: Clock = system_clock


UseCase = Callable[[Envelope[M], U, Deps], Awaitable[object]]
Rejector = Callable[[Envelope[Any], DomainError], Contract]


@dataclass(frozen=True)
class Route(Generic[M, U]):
    """One message type and the use case that handles it.

    ``only``, if given, says which messages of the type the use case acts on (a rule on the
    message alone, the one the use case itself checks first); the runtime skips the others as it
    skips a type with no route: no transaction, no inbox row, no batch read. A ticket moves
    through five to seven transitions and most workers act on one or two of them; each of the
    rest had cost a transaction that locked the order's rows for nothing."""

    message: type[M]
    use_case: UseCase[M, U]
    only: Callable[[M], bool] | None = None

    @property
    def type_name(self) -> str:
        return self.message.event_type

    def acts_on(self, payload: M) -> bool:
        return self.only is None or self.only(payload)


def route(message: type[M], use_case: UseCase[M, U], *, only: Callable[[M], bool] | None = None) -> Route[M, U]:
    return Route(message, use_case, only)


@dataclass(frozen=True)
class Subscription(Generic[U]):
    """A topic and the routes of the message types this worker acts on; the others it carries
    are skipped (counted). ``on_rejected`` builds the rejection event for a refused command."""

    topic: Topic | str
    routes: Sequence[Route[Any, U]]
    on_rejected: Rejector | None = None
    by_type: dict[str, Route[Any, U]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type: dict[str, Route[Any, U]] = {}
        catalogued = BY_NAME.get(self.topic_name)
        for r in self.routes:
            if catalogued is not None and r.message not in catalogued.messages:
                raise ValueError(f"{r.type_name} is not carried by {self.topic_name}")
            if r.type_name in by_type:
                raise ValueError(f"{r.type_name} has two routes on {self.topic_name}")
            by_type[r.type_name] = r
        object.__setattr__(self, "by_type", by_type)

    @property
    def topic_name(self) -> str:
        return self.topic if isinstance(self.topic, str) else self.topic.name


@dataclass(frozen=True)
class PeriodicJob(Generic[U]):
    """A background job over due items: ``due`` lists them (no locks, quarantined items left out),
    ``run`` handles one in its own transaction, locking it and checking it is still due (another
    replica may have done it already); it returns whether it did anything."""

    name: str
    due: Callable[[U, Quarantine], Awaitable[list[DueItem]]]
    run: Callable[[U, DueItem], Awaitable[bool]]
    every: float


def periodic(name: str, due: Callable[[U, Quarantine], Awaitable[list[DueItem]]],
             run: Callable[[U, DueItem], Awaitable[bool]], every: float) -> PeriodicJob[U]:
    return PeriodicJob(name, due, run, every)
