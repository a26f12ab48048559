"""The back office's use cases on the fakes: who may submit what, for which shop, as whom, and
how the workers' answers settle a submitted decision."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contracts import Envelope, new_envelope
from contracts import admin as ad
from contracts import decisions as d
from services.backoffice import service
from services.backoffice.handlers import subscriptions
from services.backoffice.staff import Staff, StaffRole
from services.common.tickets import command_rejected
from services.domain.erp_order import ErpOrder, ErpOrderKind
from services.domain.errors import DomainError
from services.domain.model import AfterSalesType, TicketStatus
from tests.unit import fakes

from .shop import WORKERS, Shop

ROUTES = {r.type_name: r for sub in subscriptions() for r in sub.routes}


def back_office(shop: Shop) -> fakes.FakeBackOfficeUnitOfWork:
    return fakes.FakeBackOfficeUnitOfWork(shop.db, "back-office")


async def person(shop: Shop, username: str, role: StaffRole, shops: list[str]) -> Staff:
    async with back_office(shop) as uow:
        await service.add_user(uow, username, f"{username}-password", role, shops)
    async with back_office(shop) as uow:
        token, _ = await service.sign_in(uow, username, f"{username}-password", shop.now)
    async with back_office(shop) as uow:
        signed = await service.signed_in(uow, token, shop.now)
    assert signed is not None
    return signed


async def pending_review(shop: Shop, shop_id: str = "shop-1") -> str:
    order_id = await shop.order(shop_id=shop_id)
    ticket_id = await shop.ask(order_id)
    await shop.review_sees_it_opened(ticket_id)
    assert shop.ticket(ticket_id).status == TicketStatus.PENDING_REVIEW
    return ticket_id


async def submit(shop: Shop, staff: Staff, kind: type[d.Decision], ticket_id: str, **fields: Any) -> Any:
    async with back_office(shop) as uow:
        return await service.submit(uow, staff, kind, ticket_id, fields, shop.now)


async def review_applies(shop: Shop, envelope: Envelope[Any]) -> None:
    """The review worker consumes the command exactly as the back office staged it."""
    routes, unit_of_work = WORKERS["review"]
    async with unit_of_work(shop.db, "review") as uow:
        await routes[envelope.type].use_case(envelope, uow, shop.deps)
        await uow.commit()


async def back_office_hears(shop: Shop, envelope: Envelope[Any]) -> None:
    async with back_office(shop) as uow:
        await ROUTES[envelope.type].use_case(envelope, uow, shop.deps)
        await uow.commit()


async def test_the_actor_of_a_decision_is_the_signed_in_person_whatever_the_body_says() -> None:
    shop = Shop()
    ticket_id = await pending_review(shop)
    alice = await person(shop, "alice", StaffRole.OPS, ["shop-1"])
    await submit(shop, alice, d.ApproveTicket, ticket_id, note="ok", actor={"role": "finance", "id": "x"})
    (approve,) = shop.db.sent("ApproveTicket")
    assert (approve.payload.actor.role, approve.payload.actor.id) == ("ops", alice.user_id)
    assert approve.producer == "back-office"
    assert approve.key == shop.ticket(ticket_id).order_id


@pytest.mark.parametrize(("role", "kind"), [
    (StaffRole.FINANCE, d.ApproveTicket), (StaffRole.OPS, d.ApproveRefund), (StaffRole.WAREHOUSE, d.RejectTicket),
    (StaffRole.ADMIN, d.ApproveLargeRefund), (StaffRole.OPS, d.ApproveLargeRefund), (StaffRole.MANAGER, d.RetryRefund),
])
async def test_a_role_that_may_not_decide_publishes_nothing(role: StaffRole, kind: type[d.Decision]) -> None:
    shop = Shop()
    ticket_id = await pending_review(shop)
    someone = await person(shop, "someone", role, ["shop-1"])
    before = len(shop.db.sent())
    with pytest.raises(service.Forbidden):
        await submit(shop, someone, kind, ticket_id, note="", reason="r")
    assert len(shop.db.sent()) == before


async def test_a_ticket_of_a_shop_not_assigned_is_neither_shown_nor_decided() -> None:
    shop = Shop()
    theirs = await pending_review(shop, shop_id="shop-2")
    ours = await pending_review(shop, shop_id="shop-1")
    alice = await person(shop, "alice", StaffRole.OPS, ["shop-1"])
    before = len(shop.db.sent())
    with pytest.raises(service.Forbidden):
        await submit(shop, alice, d.ApproveTicket, theirs)
    assert len(shop.db.sent()) == before
    async with back_office(shop) as uow:
        listed = await service.ticket_list(uow, alice, service.views.TicketFilter())
        with pytest.raises(service.Forbidden):
            await service.ticket_list(uow, alice, service.views.TicketFilter(shop="shop-2"))
    assert [t.ticket_id for t in listed.items] == [ours]


async def test_a_wrong_password_an_unknown_name_and_an_expired_session_do_not_sign_in() -> None:
    shop = Shop()
    await person(shop, "alice", StaffRole.OPS, ["shop-1"])
    async with back_office(shop) as uow:
        with pytest.raises(service.SignInRefused):
            await service.sign_in(uow, "alice", "not-her-password", shop.now)
        with pytest.raises(service.SignInRefused):
            await service.sign_in(uow, "mallory", "alice-password", shop.now)
        token, expires_at = await service.sign_in(uow, "alice", "alice-password", shop.now)
    shop.now = expires_at
    async with back_office(shop) as uow:
        assert await service.signed_in(uow, token, shop.now) is None
    stored = next(iter(shop.db.state.staff_users.values())).password_hash
    assert stored.startswith("$argon2id$")
    assert "alice-password" not in stored


async def test_a_decision_stays_accepted_until_the_worker_applies_it() -> None:
    shop = Shop()
    ticket_id = await pending_review(shop)
    alice = await person(shop, "alice", StaffRole.OPS, ["shop-1"])
    decision_id = await submit(shop, alice, d.ApproveTicket, ticket_id)
    async with back_office(shop) as uow:
        assert (await service.decision(uow, alice, decision_id)).outcome == "ACCEPTED"
    await review_applies(shop, shop.db.sent("ApproveTicket")[-1])
    moved = shop.db.sent("TicketStatusChanged")[-1]
    assert moved.causation_id == decision_id
    await back_office_hears(shop, moved)
    async with back_office(shop) as uow:
        settled = await service.decision(uow, alice, decision_id)
    assert (settled.outcome, settled.outcome_code) == ("APPLIED", str(moved.payload.to_status))


async def test_a_decision_the_worker_refuses_is_settled_with_the_workers_reason() -> None:
    """Two ops approve the same ticket: the second approval reaches a ticket already approved;
    review refuses it (the runtime publishes the rejection) and that settles it as REFUSED."""
    shop = Shop()
    ticket_id = await pending_review(shop)
    alice = await person(shop, "alice", StaffRole.OPS, ["shop-1"])
    carol = await person(shop, "carol", StaffRole.OPS, ["shop-1"])
    await submit(shop, alice, d.ApproveTicket, ticket_id)
    late = await submit(shop, carol, d.ApproveTicket, ticket_id)
    first, second = shop.db.sent("ApproveTicket")
    await review_applies(shop, first)
    with pytest.raises(DomainError) as refused:
        await review_applies(shop, second)
    await back_office_hears(shop, new_envelope(command_rejected(second, refused.value), key=second.key,
                                               producer="review", cause=second))
    async with back_office(shop) as uow:
        settled = await service.decision(uow, carol, late)
    assert (settled.outcome, settled.outcome_code) == ("REFUSED", refused.value.code)
    assert settled.outcome_message == refused.value.message


async def test_only_an_admin_changes_the_reasons_catalogue_and_intake_applies_it() -> None:
    shop = Shop()
    root = await person(shop, "root", StaffRole.ADMIN, [])
    alice = await person(shop, "alice", StaffRole.OPS, ["shop-1"])
    before = len(shop.db.sent())
    async with back_office(shop) as uow:
        with pytest.raises(service.Forbidden):
            await service.change_reasons(uow, alice, ad.SaveReason, "REFUND_ONLY",
                                         {"code": "LATE_DELIVERY", "label": "Too late"}, shop.now)
    assert len(shop.db.sent()) == before
    async with back_office(shop) as uow:
        decision_id = await service.change_reasons(uow, root, ad.SaveReason, "REFUND_ONLY",
                                                   {"code": "LATE_DELIVERY", "label": "Too late"}, shop.now)
    (saved,) = shop.db.sent("SaveReason")
    assert (saved.payload.requested_by, saved.key, saved.event_id) == (root.user_id, "reasons.REFUND_ONLY",
                                                                        decision_id)
    routes, unit_of_work = WORKERS["intake"]
    async with unit_of_work(shop.db, "intake") as uow:
        await routes["SaveReason"].use_case(saved, uow, shop.deps)
        await uow.commit()
    assert shop.db.state.reasons[(AfterSalesType.REFUND_ONLY, "LATE_DELIVERY")].label == "Too late"


async def test_an_erp_restart_is_for_the_shops_people_only() -> None:
    shop = Shop(shop_policies={"shop-2": {"has_erp": True}})
    order = ErpOrder.first_sent(shop_id="shop-2", ticket_id="T-1", ticket_no="AS1", order_id="O-1",
                                kind=ErpOrderKind.RETURN_RECEIPT, lines=(), now=shop.now,
                                backoff=lambda n: timedelta(0))
    shop.db.state.erp_orders[order.erp_order_id] = order
    alice = await person(shop, "alice", StaffRole.OPS, ["shop-1"])
    bob = await person(shop, "bob", StaffRole.FINANCE, ["shop-2"])
    async with back_office(shop) as uow:
        with pytest.raises(service.Forbidden):
            await service.restart_erp_order(uow, alice, order.erp_order_id, shop.now)
    async with back_office(shop) as uow:
        await service.restart_erp_order(uow, bob, order.erp_order_id, shop.now)
    (restart,) = shop.db.sent("RestartErpOrder")
    assert (restart.payload.erp_order_id, restart.payload.requested_by) == (order.erp_order_id, bob.user_id)


async def test_five_wrong_passwords_in_a_row_lock_the_account_for_a_quarter_of_an_hour() -> None:
    shop = Shop()
    await person(shop, "alice", StaffRole.OPS, ["shop-1"])

    async def sign_in(password: str) -> None:
        async with back_office(shop) as uow:
            await service.sign_in(uow, "alice", password, shop.now)

    for _ in range(4):
        with pytest.raises(service.SignInRefused):
            await sign_in("guess-guess-guess")
    await sign_in("alice-password")  # a right one in between starts the count again
    for _ in range(5):
        with pytest.raises(service.SignInRefused):
            await sign_in("guess-guess-guess")
    with pytest.raises(service.AccountLocked):
        await sign_in("alice-password")
    shop.later(minutes=15, seconds=1)
    await sign_in("alice-password")
