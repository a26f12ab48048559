"""Back-office use cases: sign in, see tickets of one's own shops, submit decisions.

A decision is never applied here. The back office checks who may submit it (role and shop),
names the signed-in person as its actor, and writes the command to its outbox in the same
transaction as its record of the submission; the review worker applies it (its state machine
checks role, state and maker-checker again) and the answer it publishes, a TicketStatusChanged
caused by the command or a CommandRejected naming it, settles the record. So the page says
"accepted" until the worker has spoken, and then what the worker said.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from contracts import Contract, Envelope
from contracts import admin as ad
from contracts import aftersales as c
from contracts import decisions as d
from contracts.monitoring import WorkItemChanged
from services.common.routes import Deps
from services.domain import figures

from . import views
from .repository import BackOfficeUnitOfWork
from .staff import (
    ACTOR_ROLE,
    DECISION_ROLES,
    Staff,
    StaffRole,
    hash_password,
    new_token,
    password_matches,
    spend_a_verification,
    token_digest,
)

D = TypeVar("D", bound=d.Decision)
C = TypeVar("C", bound=Contract)

SESSION_LIFETIME = timedelta(hours=8)  # one working shift
# guessing a password: five wrong ones in a row lock the account for a quarter of an hour
FAILED_SIGN_INS_BEFORE_LOCK = 5
LOCKED_FOR = timedelta(minutes=15)


class SignInRefused(Exception):
    """Wrong username or password (which one is not said)."""


class AccountLocked(SignInRefused):
    """Too many wrong passwords in a row: no sign-in, even with the right one, for a while."""


class Forbidden(Exception):
    """Signed in, but this role or these shops may not do or see this."""


class NotFound(Exception):
    pass


class InvalidDecision(Exception):
    """The decision's fields break its contract (an empty reason, say); says which, never the value."""


async def add_user(uow: BackOfficeUnitOfWork, username: str, password: str, role: StaffRole,
                   shops: list[str]) -> str:
    """An account for a person (the ``aftersales user add`` command); the id is the actor id
    every decision of theirs carries."""
    user_id = f"{role.value}-{uuid.uuid4().hex[:10]}"
    if not await uow.staff.add(user_id, username, hash_password(password), role, shops):
        raise ValueError(f"the username {username!r} is taken")
    await uow.commit()
    return user_id


async def sign_in(uow: BackOfficeUnitOfWork, username: str, password: str, now: datetime,
                  lifetime: timedelta = SESSION_LIFETIME) -> tuple[str, datetime]:
    """A new session token (shown once) and when it expires."""
    user = await uow.staff.by_username(username)
    if user is None:
        spend_a_verification(password)
        raise SignInRefused
    if user.locked_until is not None and user.locked_until > now:
        spend_a_verification(password)  # a locked account answers as slowly as any other
        raise AccountLocked
    if not password_matches(user.password_hash, password) or not user.active:
        await uow.staff.failed_sign_in(user.user_id, now, FAILED_SIGN_INS_BEFORE_LOCK, LOCKED_FOR)
        await uow.commit()
        raise SignInRefused
    await uow.staff.signed_in_ok(user.user_id)
    token, expires_at = new_token(), now + lifetime
    await uow.staff.open_session(token_digest(token), user.user_id, now, expires_at)
    await uow.commit()
    return token, expires_at


async def signed_in(uow: BackOfficeUnitOfWork, token: str, now: datetime) -> Staff | None:
    return await uow.staff.signed_in(token_digest(token), now)


async def sign_out(uow: BackOfficeUnitOfWork, token: str) -> None:
    await uow.staff.close_session(token_digest(token))
    await uow.commit()


def require_role(staff: Staff, *roles: StaffRole) -> None:
    if staff.role not in roles:
        raise Forbidden(f"the {staff.role.value} role may not do this")


async def submit(uow: BackOfficeUnitOfWork, staff: Staff, kind: type[D], ticket_id: str,
                 fields: dict[str, Any], now: datetime) -> uuid.UUID:
    """Publishes ``kind`` for the ticket with the signed-in person as actor; returns the command's
    event id, which the decision's record and the worker's answer share."""
    if staff.role not in DECISION_ROLES[kind]:
        raise Forbidden(f"the {staff.role.value} role may not submit {kind.event_type}")
    key = await uow.queries.ticket_key(ticket_id)
    if key is None:
        raise NotFound(f"no ticket {ticket_id}")
    if not staff.sees(key.shop_id):
        raise Forbidden("this ticket belongs to a shop you are not assigned to")
    actor = c.Actor(role=ACTOR_ROLE[staff.role], id=staff.user_id)
    command = _command(kind, {**fields, "ticket_id": key.ticket_id, "order_id": key.order_id, "actor": actor})
    return await _submitted(uow, staff, command, key.order_id, key.ticket_id, now)


async def _submitted(uow: BackOfficeUnitOfWork, staff: Staff, command: Contract, key: str, ticket_id: str,
                     now: datetime) -> uuid.UUID:
    """Every command the back office sends: staged in its outbox with the record of who sent it, in
    one commit; the command's event id is the record's id (``ticket_id`` is empty off a ticket)."""
    envelope = uow.publish(command, key=key)
    await uow.decisions.submitted(envelope.event_id, ticket_id, key, command.event_type, staff, now)
    await uow.commit()
    return envelope.event_id


def _command(kind: type[C], fields: dict[str, Any]) -> C:
    try:
        return kind.model_validate(fields, strict=False)
    except ValidationError as exc:
        raise InvalidDecision("; ".join(f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}"
                                        for e in exc.errors())) from None


async def change_reasons(uow: BackOfficeUnitOfWork, staff: Staff, kind: type[ad.ReasonCommand], ticket_type: str,
                         fields: dict[str, Any], now: datetime) -> uuid.UUID:
    """An admin's change to the reasons catalogue, for intake (which owns it) to apply."""
    require_role(staff, StaffRole.ADMIN)
    command = _command(kind, {**fields, "type": ticket_type, "requested_by": staff.user_id})
    key = f"reasons.{command.type.value}"
    return await _submitted(uow, staff, command, key, "", now)


async def restart_erp_order(uow: BackOfficeUnitOfWork, staff: Staff, erp_order_id: uuid.UUID,
                            now: datetime) -> uuid.UUID:
    """Restarts an ERP order that gave up (the failed-ERP view), for erp_sync to send again."""
    require_role(staff, StaffRole.OPS, StaffRole.FINANCE, StaffRole.ADMIN)
    key = await uow.queries.erp_order_key(erp_order_id)
    if key is None:
        raise NotFound(f"no ERP order {erp_order_id}")
    if not staff.sees(key.shop_id):
        raise Forbidden("this ERP order belongs to a shop you are not assigned to")
    restart = ad.RestartErpOrder(erp_order_id=erp_order_id, order_id=key.order_id, requested_by=staff.user_id)
    return await _submitted(uow, staff, restart, key.order_id, key.ticket_id, now)


async def reasons(uow: BackOfficeUnitOfWork, ticket_type: str) -> list[views.ReasonView]:
    return await uow.queries.reasons(ticket_type)


async def decision(uow: BackOfficeUnitOfWork, staff: Staff, decision_id: uuid.UUID) -> views.Decision:
    found = await uow.decisions.get(decision_id)
    if found is None:
        raise NotFound(f"no decision {decision_id}")
    if not found.ticket_id:  # off a ticket (a catalogue change, a work item): its sender's and the admins'
        if found.user_id != staff.user_id:
            require_role(staff, StaffRole.ADMIN)
        return found
    key = await uow.queries.ticket_key(found.ticket_id)
    if key is None or not staff.sees(key.shop_id):
        raise Forbidden("this decision is about a shop you are not assigned to")
    return found


async def ticket_detail(uow: BackOfficeUnitOfWork, staff: Staff, ticket_id: str) -> views.TicketDetail:
    key = await uow.queries.ticket_key(ticket_id)
    if key is None:
        raise NotFound(f"no ticket {ticket_id}")
    if not staff.sees(key.shop_id):
        raise Forbidden("this ticket belongs to a shop you are not assigned to")
    detail = await uow.queries.detail(ticket_id)
    if detail is None:
        raise NotFound(f"no ticket {ticket_id}")
    return detail


async def ticket_list(uow: BackOfficeUnitOfWork, staff: Staff, query: views.TicketFilter) -> views.TicketPage:
    if query.shop is not None and not staff.sees(query.shop):
        raise Forbidden("you are not assigned to this shop")
    return await uow.queries.tickets(query, staff.shops)


async def finance_refunds(uow: BackOfficeUnitOfWork, staff: Staff, limit: int = 500) -> list[views.FinanceRefund]:
    require_role(staff, StaffRole.FINANCE, StaffRole.MANAGER, StaffRole.ADMIN)
    return await uow.queries.finance_refunds(staff.shops, limit)


async def failures(uow: BackOfficeUnitOfWork, staff: Staff) -> views.Failures:
    require_role(staff, StaffRole.FINANCE, StaffRole.OPS, StaffRole.MANAGER, StaffRole.ADMIN)
    return await uow.queries.failures(staff.shops)


async def dead_letters(uow: BackOfficeUnitOfWork, staff: Staff, limit: int = 100) -> list[views.DeadLetter]:
    require_role(staff, StaffRole.ADMIN)
    return await uow.queries.dead_letters(limit)


async def replay_dead_letter(uow: BackOfficeUnitOfWork, staff: Staff, dead_letter_id: uuid.UUID,
                             now: datetime) -> uuid.UUID:
    """Asks the consumer group that gave up on a message to read it back from its source offset
    and handle it again (after a fix, say); the command names the message, it does not carry it."""
    letter = await dead_letter(uow, staff, dead_letter_id)
    if letter.partition < 0 or letter.offset < 0:
        raise InvalidDecision("this dead letter has no source offset to replay from")
    replay = ad.ReplayDeadLetter(
        dead_letter_id=letter.dead_letter_id, source_topic=letter.source_topic, partition=letter.partition,
        offset=letter.offset, consumer_group=letter.consumer_group, original_sha256=letter.original_sha256,
        requested_by=staff.user_id)
    return await _submitted(uow, staff, replay, f"dlq.{letter.dead_letter_id}", "", now)


async def dead_letter(uow: BackOfficeUnitOfWork, staff: Staff, dead_letter_id: uuid.UUID) -> views.DeadLetterDetail:
    require_role(staff, StaffRole.ADMIN)
    found = await uow.queries.dead_letter(dead_letter_id)
    if found is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return found


# ---------------------------------------------------------------- monitoring: work queue and dashboard
SEES_EVERY_ITEM = (StaffRole.ADMIN, StaffRole.MANAGER)  # items with no shop (outages, dead letters) too
WORK_ITEM_COMMANDS: dict[str, type[ad.AcknowledgeWorkItem] | type[ad.ResolveWorkItem]] = {
    "acknowledge": ad.AcknowledgeWorkItem, "resolve": ad.ResolveWorkItem}
AGE_BANDS = ((timedelta(hours=1), "under 1 h"), (timedelta(hours=4), "1–4 h"), (timedelta(hours=24), "4–24 h"))
OLDEST_BAND = "over a day"
DASHBOARD_DAYS = 7  # the default period: the last week of reporting days


def _item_scope(staff: Staff) -> frozenset[str] | None:
    return None if staff.role in SEES_EVERY_ITEM else staff.shops


async def work_items(uow: BackOfficeUnitOfWork, staff: Staff, query: views.WorkItemFilter) -> list[views.WorkItem]:
    """The work queue a person sees: admins and managers every item, others their shops' items."""
    return await uow.queries.work_items(_item_scope(staff), query.owner, query.include_resolved, query.limit)


async def change_work_item(uow: BackOfficeUnitOfWork, staff: Staff, action: str, item_id: uuid.UUID, note: str,
                           now: datetime) -> uuid.UUID:
    """Acknowledges or resolves an item, as a command monitoring applies (its answer, a
    WorkItemChanged caused by the command or a CommandRejected naming it, settles the record).
    The item's owner team may, and admins and managers may for any item."""
    kind = WORK_ITEM_COMMANDS.get(action)
    if kind is None:
        raise NotFound(f"no work-item action {action}")
    item = await uow.queries.work_item(item_id)
    scope = _item_scope(staff)
    if item is None or (scope is not None and item.shop_id not in scope):
        raise NotFound(f"no work item {item_id}")
    if staff.role not in SEES_EVERY_ITEM and item.owner != staff.role.value:
        raise Forbidden(f"this item is for {item.owner}, not {staff.role.value}")
    fields: dict[str, Any] = {"item_id": item_id, "order_id": item.order_id, "requested_by": staff.user_id}
    if kind is ad.ResolveWorkItem:
        fields["note"] = note
    command = _command(kind, fields)
    return await _submitted(uow, staff, command, item.order_id, item.ticket_id or "", now)


def reporting_days(query: views.DashboardFilter, now: datetime, zone: str) -> tuple[date, date]:
    """The query's days, or the last week of reporting days up to today in the reporting zone."""
    today = now.astimezone(ZoneInfo(zone)).date()
    last = query.last_day or (today if query.first_day is None else query.first_day + timedelta(DASHBOARD_DAYS - 1))
    first = query.first_day or last - timedelta(DASHBOARD_DAYS - 1)
    if last < first:
        raise InvalidDecision("to: is before from")
    if (last - first).days > 366:
        raise InvalidDecision("to: a dashboard covers at most a year")
    return first, last


async def dashboard(uow: BackOfficeUnitOfWork, staff: Staff, query: views.DashboardFilter, now: datetime,
                    zone: str) -> views.Dashboard:
    """The figures monitoring keeps, summed over the person's shops (or the one asked) and the
    period; admins also see what belongs to no shop (dead letters, outages)."""
    if query.shop is not None and not staff.sees(query.shop):
        raise Forbidden("you are not assigned to this shop")
    first, last = reporting_days(query, now, zone)
    shops = frozenset({query.shop}) if query.shop else staff.shops
    if staff.role is StaffRole.ADMIN and query.shop is None:
        shops |= {""}  # monitoring's figures of no shop
    found = figures.of(await uow.queries.counters(shops, first, last))
    since = datetime.combine(first, time.min, ZoneInfo(zone))
    until = datetime.combine(last + timedelta(days=1), time.min, ZoneInfo(zone))
    queue = await uow.queries.work_items(_item_scope(staff) if query.shop is None else shops, None, False, 500)

    def rate(name: str, value: figures.Rate) -> views.RateView:
        return views.RateView(name=name, in_tickets=value.in_tickets, sold=value.sold, per_mille=value.per_mille)

    def counts(pairs: dict[Any, int]) -> list[views.Count]:
        named = {"/".join(key) if isinstance(key, tuple) else (key or "?"): n for key, n in pairs.items()}
        return [views.Count(key=key, value=n) for key, n in sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))]

    return views.Dashboard(
        shops=sorted(shop for shop in shops if shop), first_day=first, last_day=last, rate=rate("all", found.rate),
        by_sku=[rate(name, value) for name, value in found.by_sku.items()],
        by_category=[rate(name, value) for name, value in found.by_category.items()],
        tickets_opened=found.tickets_opened, reasons=counts(found.reasons),
        refunded=[views.Amount(currency=currency, cents=cents) for currency, cents in sorted(found.refunded.items())],
        refunds_per_day=await uow.queries.refunds_per_day(shops, first, last),
        refunds_completed=found.refunds_completed, refunds_failed=found.refunds_failed,
        refunds_retried=found.refunds_retried, time_in_state=await uow.queries.time_in_state(shops, since, until),
        sla_breaches=counts(found.sla_breaches), integration_errors=counts(found.integration_errors),
        dead_letters=counts(found.dead_letters) if staff.role is StaffRole.ADMIN else [],
        queue_ageing=queue_ageing(queue, now))


def queue_ageing(items: list[views.WorkItem], now: datetime) -> list[views.Count]:
    """Unresolved items by how long they have been open, youngest band first."""
    bands = {label: 0 for _, label in AGE_BANDS} | {OLDEST_BAND: 0}
    for item in items:
        age = now - item.opened_at
        bands[next((label for limit, label in AGE_BANDS if age < limit), OLDEST_BAND)] += 1
    return [views.Count(key=label, value=n) for label, n in bands.items()]


# ---------------------------------------------------------------- the workers' answers (Kafka)
async def on_ticket_changed(envelope: Envelope[c.TicketStatusChanged], uow: BackOfficeUnitOfWork,
                            deps: Deps) -> None:
    """A move caused by one of our commands settles it as applied (the first move counts)."""
    if envelope.causation_id is not None:
        event = envelope.payload
        await uow.decisions.settle(envelope.causation_id, "APPLIED", event.to_status,
                                   f"{event.from_status} → {event.to_status}", deps.clock())


async def on_work_item_changed(envelope: Envelope[WorkItemChanged], uow: BackOfficeUnitOfWork,
                               deps: Deps) -> None:
    """Monitoring's answer to an acknowledgement or resolution submitted here."""
    if envelope.causation_id is not None:
        item = envelope.payload
        await uow.decisions.settle(envelope.causation_id, "APPLIED", item.state.value,
                                   f"{item.kind}: {item.action.value.lower()}", deps.clock())


async def on_command_rejected(envelope: Envelope[c.CommandRejected], uow: BackOfficeUnitOfWork,
                              deps: Deps) -> None:
    rejected = envelope.payload
    if rejected.rejected_event_id is not None:
        await uow.decisions.settle(rejected.rejected_event_id, "REFUSED", rejected.code, rejected.message,
                                   deps.clock())
