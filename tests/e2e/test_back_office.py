"""People at work through the back office: its own process, over HTTP, against every worker's
process on the real stack. A decision is accepted by the back office, applied by the review
worker, and the page learns the outcome from the worker's answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from contracts import decisions as d
from contracts.ops import OpsAlert, Severity
from services.actors import Line, World
from services.backoffice import service
from services.backoffice.repository import SqlBackOfficeUnitOfWork
from services.backoffice.staff import StaffRole
from services.common.procs import WorkerProcesses
from services.common.settings import Settings
from tests.integration.helpers import eventually

from .conftest import ROOT, back_office_process, caught_up

pytestmark = pytest.mark.asyncio(loop_scope="session")

KETTLE = Line("SKU-KETTLE", 1, 15_900, 14_900)
PASSWORD = "correct horse battery"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def office(stack: Settings, workers: WorkerProcesses) -> AsyncIterator[httpx.AsyncClient]:
    process, base = back_office_process()
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        async def serving() -> bool:
            try:
                return (await client.get("/api/me")).status_code == 401
            except httpx.TransportError:
                return False
        await eventually(serving, timeout=60)
        await caught_up(stack, ["back-office"])  # it settles each decision from the tickets topic
        yield client
    dead = process.dead()
    process.stop()
    assert not dead, f"the back office died: {process.log_tail('backoffice')}"


async def signed_in(office: httpx.AsyncClient, sessions: Any, role: StaffRole, shop: str) -> dict[str, str]:
    username = f"{role.value}-{uuid.uuid4().hex[:8]}"
    async with SqlBackOfficeUnitOfWork(sessions, "back-office") as uow:
        await service.add_user(uow, username, PASSWORD, role, [shop])
    answer = await office.post("/api/session", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"authorization": f"Bearer {answer.json()['token']}"}


async def outcome(office: httpx.AsyncClient, person: dict[str, str], accepted: httpx.Response) -> dict[str, Any]:
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "accepted"

    async def settled() -> dict[str, Any] | None:
        decision = (await office.get(accepted.json()["outcome_at"], headers=person)).json()
        return None if decision["outcome"] == "ACCEPTED" else dict(decision)
    return await eventually(settled, timeout=30)


async def test_ops_approves_finance_sends_back_and_a_refused_decision_says_why(
        world: World, office: httpx.AsyncClient, sessions: Any) -> None:
    shop = f"shop-bo-{uuid.uuid4().hex[:6]}"
    oid = await world.place_order([KETTLE], shop=shop, state="SHIPPED")
    await world.request(oid, "REFUND_ONLY", [(1, 1)], reason="NOT_AS_DESCRIBED")
    ticket = await world.opened(oid)
    ops = await signed_in(office, sessions, StaffRole.OPS, shop)
    finance = await signed_in(office, sessions, StaffRole.FINANCE, shop)

    listed = (await office.get("/api/tickets", headers=ops)).json()["items"]
    assert [(t["ticket_no"], t["status"]) for t in listed] == [(ticket.ticket_no, "PENDING_REVIEW")]

    approved = await outcome(office, ops, await office.post(f"/api/tickets/{ticket.ticket_id}/approve",
                                                            headers=ops, json={"note": "as described: no"}))
    assert (approved["outcome"], approved["outcome_code"]) == ("APPLIED", "PENDING_REFUND")
    me = (await office.get("/api/me", headers=ops)).json()
    detail = (await office.get(f"/api/tickets/{ticket.ticket_id}", headers=ops)).json()
    assert detail["ticket"]["status"] == "PENDING_REFUND"
    assert detail["ops_reviewer_id"] == me["user_id"]
    assert (detail["timeline"][-1]["actor_role"], detail["timeline"][-1]["actor_id"]) == ("ops", me["user_id"])

    assert [r["ticket_id"] for r in (await office.get("/api/finance/refunds", headers=finance)).json()] == [
        ticket.ticket_id]
    sent_back = await outcome(office, finance, await office.post(
        f"/api/tickets/{ticket.ticket_id}/send-back", headers=finance, json={"reason": "photo of the label, please"}))
    assert (sent_back["outcome"], sent_back["outcome_code"]) == ("APPLIED", "PENDING_REVIEW")

    again = await outcome(office, finance, await office.post(
        f"/api/tickets/{ticket.ticket_id}/finance-approval", headers=finance, json={}))
    assert again["outcome"] == "REFUSED"
    assert again["outcome_code"] == "ILLEGAL_TRANSITION"
    detail = (await office.get(f"/api/tickets/{ticket.ticket_id}", headers=ops)).json()
    assert detail["ticket"]["status"] == "PENDING_REVIEW"
    assert [d["outcome"] for d in detail["decisions"]] == ["APPLIED", "APPLIED", "REFUSED"]


# ---------------------------------------------------------------- the pages, in headless Chromium
CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium, installed by deploy/local/browser.sh
CHROMIUM_INSTALLED = CHROMIUM.exists()
SHOTS = ROOT / ".local" / "artifacts" / "ui"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_INSTALLED:
        pytest.fail("no /usr/bin/chromium: run `bash deploy/local/browser.sh` (./dev test does)", pytrace=False)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield launched
        await launched.close()


async def sign_in_page(browser: Browser, office: httpx.AsyncClient, sessions: Any, role: StaffRole, shop: str,
                       **context: Any) -> Page:
    username = f"{role.value}-{uuid.uuid4().hex[:8]}"
    async with SqlBackOfficeUnitOfWork(sessions, "back-office") as uow:
        await service.add_user(uow, username, PASSWORD, role, [shop])
    page = await (await browser.new_context(base_url=str(office.base_url), **context)).new_page()
    await page.goto("/tickets")
    assert page.url.endswith("/sign-in")  # not signed in: the pages send people to sign in
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/tickets")
    return page


async def refund_asked(world: World) -> tuple[str, Any]:
    """A shop of the test's own and a refund-only asked on a shipped kettle there."""
    shop = f"shop-ui-{uuid.uuid4().hex[:6]}"
    oid = await world.place_order([KETTLE], shop=shop, state="SHIPPED")
    await world.request(oid, "REFUND_ONLY", [(1, 1)], reason="NOT_AS_DESCRIBED")
    return shop, await world.opened(oid)


async def test_ops_signs_in_and_approves_a_ticket_and_sees_it_move(
        world: World, office: httpx.AsyncClient, sessions: Any, browser: Browser) -> None:
    shop, ticket = await refund_asked(world)
    page = await sign_in_page(browser, office, sessions, StaffRole.OPS, shop, viewport={"width": 1280, "height": 800})
    await page.click(f"text={ticket.ticket_no}")
    await expect(page.locator("#status")).to_have_text("PENDING_REVIEW")
    await page.click("#approve")
    await expect(page.locator("#decision")).to_contain_text("ApproveTicket applied", timeout=30_000)
    await expect(page.locator("#status")).to_have_text("PENDING_REFUND")
    await expect(page.locator("#timeline")).to_contain_text("PENDING_REVIEW → PENDING_REFUND")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "ops-approved-desktop.png"), full_page=True)
    await page.goto("/tickets")
    await expect(page.locator("table")).to_contain_text("PENDING_REFUND")
    await page.close()


async def test_finance_on_a_phone_sends_a_ticket_back_with_a_reason(
        world: World, office: httpx.AsyncClient, sessions: Any, browser: Browser) -> None:
    shop, ticket = await refund_asked(world)
    await world.decide(d.ApproveTicket, ticket, "ops", "ops-ui")
    await world.status(ticket, "PENDING_REFUND")
    page = await sign_in_page(browser, office, sessions, StaffRole.FINANCE, shop,
                              viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    await page.goto("/finance")
    await page.click(f"text={ticket.ticket_no}")
    await expect(page.locator("#status")).to_have_text("PENDING_REFUND")
    await page.click("#send-back")  # no reason yet: the browser keeps the form (the reason is required)
    await expect(page.locator("#status")).to_have_text("PENDING_REFUND")
    await page.fill("form[action$='/send-back'] input[name=reason]", "the buyer's photo shows another item")
    await page.click("#send-back")
    await expect(page.locator("#decision")).to_contain_text("SendBackRefund applied", timeout=30_000)
    await expect(page.locator("#status")).to_have_text("PENDING_REVIEW")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "finance-sent-back-phone.png"), full_page=True)
    await page.close()


async def test_an_empty_reason_posted_past_the_browser_is_refused_and_publishes_nothing(
        world: World, office: httpx.AsyncClient, sessions: Any) -> None:
    shop = f"shop-ui-{uuid.uuid4().hex[:6]}"
    oid = await world.place_order([KETTLE], shop=shop, state="SHIPPED")
    await world.request(oid, "REFUND_ONLY", [(1, 1)])
    ticket = await world.opened(oid)
    ops = await signed_in(office, sessions, StaffRole.OPS, shop)
    token = ops["authorization"].removeprefix("Bearer ")
    refused = await office.post(f"/tickets/{ticket.ticket_id}/reject", data={"reason": ""},
                                headers={"cookie": f"aftersales_session={token}"})
    assert refused.status_code == 422
    assert "reason" in refused.text
    assert world.messages_of(oid, "RejectTicket") == []


async def test_an_admin_edits_the_reasons_catalogue_and_intake_applies_it(
        office: httpx.AsyncClient, sessions: Any) -> None:
    root = await signed_in(office, sessions, StaffRole.ADMIN, "shop-none")
    ops = await signed_in(office, sessions, StaffRole.OPS, "shop-none")
    code = f"E2E_{uuid.uuid4().hex[:6].upper()}"
    assert (await office.put(f"/api/reasons/REPAIR/{code}", headers=ops, json={"label": "x"})).status_code == 403
    accepted = await office.put(f"/api/reasons/REPAIR/{code}", headers=root, json={"label": "Stopped working"})
    assert accepted.status_code == 202, accepted.text

    async def listed() -> list[dict[str, Any]]:
        found = [r for r in (await office.get("/api/reasons/REPAIR", headers=root)).json() if r["code"] == code]
        return found
    (reason,) = await eventually(listed, timeout=30)
    assert (reason["label"], reason["visible"]) == ("Stopped working", True)
    hidden = await office.put(f"/api/reasons/REPAIR/{code}/visibility", headers=root, json={"visible": False})
    assert hidden.status_code == 202

    async def hidden_now() -> bool:
        return not (await listed())[0]["visible"]
    await eventually(hidden_now, timeout=30)
    refused = await outcome(office, root, await office.delete(f"/api/reasons/REPAIR/NO_SUCH_{code}", headers=root))
    assert (refused["outcome"], refused["outcome_code"]) == ("REFUSED", "UNKNOWN_REASON")
    assert (await office.delete(f"/api/reasons/REPAIR/{code}", headers=root)).status_code == 202

    async def gone() -> bool:
        return await listed() == []
    await eventually(gone, timeout=30)


async def test_ops_acknowledges_a_work_item_monitoring_applies_it_and_the_dashboard_counts_the_ticket(
        world: World, office: httpx.AsyncClient, sessions: Any, browser: Browser) -> None:
    """An SLA alert becomes a work item in the monitoring process; ops take it in the back office
    and monitoring's answer settles the decision; a second acknowledgement is refused with why;
    the dashboard of the shop counts the ticket, and both pages render in Chromium."""
    shop, ticket = await refund_asked(world)
    await world.bus.publish(OpsAlert(kind="REVIEW_SLA_BREACHED", severity=Severity.WARNING,
                                     message="not reviewed in time", order_id=ticket.order_id,
                                     ticket_id=ticket.ticket_id), key=ticket.order_id, producer="scheduler")
    ops = await signed_in(office, sessions, StaffRole.OPS, shop)

    async def item() -> dict[str, Any] | None:
        return next((i for i in (await office.get("/api/work-items", headers=ops)).json()
                     if i["ticket_id"] == ticket.ticket_id), None)
    found = await eventually(item, timeout=30)
    assert (found["kind"], found["owner"], found["state"]) == ("REVIEW_SLA_BREACHED", "ops", "OPEN")

    path = f"/api/work-items/{found['item_id']}/acknowledge"
    taken = await outcome(office, ops, await office.post(path, headers=ops))
    assert (taken["outcome"], taken["outcome_code"]) == ("APPLIED", "ACKNOWLEDGED")
    again = await outcome(office, ops, await office.post(path, headers=ops))
    assert (again["outcome"], again["outcome_code"]) == ("REFUSED", "WORK_ITEM_NOT_OPEN")
    assert (await item() or {})["state"] == "ACKNOWLEDGED"

    async def counted() -> bool:
        figures = (await office.get("/api/dashboard", params={"shop": shop}, headers=ops)).json()
        return bool(figures["tickets_opened"] == 1 and figures["rate"]["sold"] == 1)
    await eventually(counted, timeout=30)

    page = await sign_in_page(browser, office, sessions, StaffRole.OPS, shop)
    await page.goto("/dashboard")
    await expect(page.locator("#tickets-opened")).to_have_text("1")
    await expect(page.locator("svg.chart").first).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
    await page.goto("/work-items")
    await expect(page.locator(f"tr[data-item='{found['item_id']}']")).to_contain_text("ACKNOWLEDGED")
    await page.screenshot(path=str(SHOTS / "work-items.png"), full_page=True)
