"""The back office's pages for people (server-rendered Jinja2, no build step, usable on a phone).

The pages call the same use cases as the HTTP API and the same rules hold: the session cookie
is the only credential (HttpOnly, SameSite=Strict: a form on another site cannot post here with
it), a decision is only ever "accepted" here, and the ticket page polls the decision until the
worker has answered (twenty lines of plain JavaScript; htmx would be one more vendored file for
the same thing). Jinja2 escapes every value it renders.

Why this module has no ``from __future__ import annotations``: FastAPI reads the routes'
annotations at definition time, and several name objects local to ``create_pages``.
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from contracts import decisions as d
from contracts.aftersales import AfterSalesType, TicketStatus
from services.domain.figures import duration_text as duration
from services.domain.figures import per_mille_text as per_mille

from . import charts, service, views
from .repository import BackOfficeUnitOfWork
from .staff import Staff, StaffRole

SESSION_COOKIE = "aftersales_session"
templates = Jinja2Templates(directory=str(FilePath(__file__).parent / "templates"))

# what a role may do from the ticket page, by the ticket's status (the worker checks again)
ACTIONS: dict[tuple[StaffRole, str], tuple[str, ...]] = {
    (StaffRole.OPS, "PENDING_REVIEW"): ("approve", "reject", "reissue"),
    (StaffRole.MANAGER, "PENDING_MANAGER"): ("manager-approval", "reject"),
    (StaffRole.FINANCE, "PENDING_REFUND"): ("finance-approval", "send-back"),
    (StaffRole.FINANCE, "REFUND_FAILED"): ("refund-retry",),
}
FORM_DECISIONS: dict[str, tuple[type[d.Decision], str]] = {
    "approve": (d.ApproveTicket, "note"), "reject": (d.RejectTicket, "reason"),
    "manager-approval": (d.ApproveLargeRefund, "note"), "finance-approval": (d.ApproveRefund, "note"),
    "send-back": (d.SendBackRefund, "reason"), "refund-retry": (d.RetryRefund, ""),
    "reissue": (d.ReissueMissingUnits, "note"),
}


def set_session_cookie(response: Response, token: str, expires_at: datetime, *, secure: bool) -> None:
    """The one session cookie the API and the pages set: HttpOnly (no script reads it) and
    SameSite=Strict (no other site's form or request carries it)."""
    response.set_cookie(SESSION_COOKIE, token, expires=expires_at, httponly=True, samesite="strict",
                        secure=secure, path="/")


def money(cents: int | None, currency: str) -> str:
    if cents is None:
        return "—"
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    unit = "¥" if currency == "CNY" else f"{currency} "
    return f"{sign}{unit}{cents // 100:,}.{cents % 100:02d}"


def when(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def create_pages(units: Callable[[], BackOfficeUnitOfWork], clock: Callable[[], datetime], *,
                 wake: Callable[[], None], cookie_secure: bool, reporting_timezone: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def signed_in(request: Request) -> Staff | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        async with units() as uow:
            return await service.signed_in(uow, token, clock())

    def to_sign_in() -> RedirectResponse:
        return RedirectResponse("/sign-in", status_code=303)

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @router.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/tickets", status_code=303)

    @router.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request) -> HTMLResponse:
        return page(request, "sign_in.html", staff=None, error=None)

    @router.post("/sign-in", response_model=None)
    async def sign_in(request: Request, username: Annotated[views.Text, Form(max_length=64)] = "",
                      password: Annotated[views.Text, Form(max_length=200)] = "") -> Response:
        try:
            async with units() as uow:
                token, expires_at = await service.sign_in(uow, username, password, clock())
        except service.AccountLocked:
            return page(request, "sign_in.html", 429, staff=None,
                        error="Too many wrong passwords: try again in a quarter of an hour.")
        except service.SignInRefused:
            return page(request, "sign_in.html", 401, staff=None, error="Wrong username or password.")
        response = RedirectResponse("/tickets", status_code=303)
        set_session_cookie(response, token, expires_at, secure=cookie_secure)
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> RedirectResponse:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            async with units() as uow:
                await service.sign_out(uow, token)
        response = to_sign_in()
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/tickets", response_model=None)
    async def tickets(request: Request, query: Annotated[views.TicketFilter, Query()]) -> Response:
        staff = await signed_in(request)
        if staff is None:
            return to_sign_in()
        async with units() as uow:
            found = await service.ticket_list(uow, staff, query)
        filters = query.model_dump(exclude_none=True, exclude={"page", "page_size", "newest_first"})

        def paging(number: int) -> str:
            return urlencode({**filters, "page": number})
        return page(request, "tickets.html", staff=staff, query=query, page=found, paging=paging,
                    types=[t.value for t in AfterSalesType], statuses=[s.value for s in TicketStatus])

    @router.get("/tickets/{ticket_id}", response_model=None)
    async def ticket(request: Request, ticket_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")],
                     decision: uuid.UUID | None = None) -> Response:
        staff = await signed_in(request)
        if staff is None:
            return to_sign_in()
        return await ticket_page(request, staff, ticket_id, decision)

    async def ticket_page(request: Request, staff: Staff, ticket_id: str, decision_id: uuid.UUID | None,
                          error: str | None = None, status_code: int = 200) -> HTMLResponse:
        async with units() as uow:  # the answer first: a ticket read after it is at least as new as it says
            decision = await service.decision(uow, staff, decision_id) if decision_id else None
            detail = await service.ticket_detail(uow, staff, ticket_id)
        return page(request, "ticket.html", status_code, staff=staff, d=detail, decision=decision, error=error,
                    actions=ACTIONS.get((staff.role, detail.ticket.status), ()))

    @router.post("/tickets/{ticket_id}/{action}", response_model=None)
    async def decide(request: Request, ticket_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")],
                     action: Annotated[str, Path(max_length=32)],
                     note: Annotated[views.Text, Form(max_length=500)] = "",
                     reason: Annotated[views.Text, Form(max_length=500)] = "") -> Response:
        staff = await signed_in(request)
        if staff is None:
            return to_sign_in()
        if action not in FORM_DECISIONS:
            raise service.NotFound(f"no decision {action}")
        kind, field = FORM_DECISIONS[action]
        fields = {field: reason if field == "reason" else note} if field else {}
        try:
            async with units() as uow:
                decision_id = await service.submit(uow, staff, kind, ticket_id, fields, clock())
        except service.InvalidDecision as exc:
            return await ticket_page(request, staff, ticket_id, None, error=str(exc), status_code=422)
        wake()
        return RedirectResponse(f"/tickets/{ticket_id}?decision={decision_id}", status_code=303)

    @router.get("/finance", response_model=None)
    async def finance(request: Request) -> Response:
        staff = await signed_in(request)
        if staff is None:
            return to_sign_in()
        async with units() as uow:
            refunds = await service.finance_refunds(uow, staff)
        return page(request, "finance.html", staff=staff, refunds=refunds)

    @router.get("/work-items", response_model=None)
    async def work_items(request: Request, query: Annotated[views.WorkItemFilter, Query()],
                         decision: uuid.UUID | None = None) -> Response:
        staff = await signed_in(request)
        if staff is None:
            return to_sign_in()
        async with units() as uow:
            items = await service.work_items(uow, staff, query)
            submitted = await service.decision(uow, staff, decision) if decision else None
        return page(request, "work_items.html", staff=staff, items=items, query=query, decision=submitted,
                    now=clock(), may_change=lambda item: staff.role in service.SEES_EVERY_ITEM
                    or item.owner == staff.role.value)

    @router.post("/work-items/{item_id}/{action}", response_model=None)
    async def change_work_item(request: Request, item_id: uuid.UUID,
                               action: Annotated[str, Path(pattern="^(acknowledge|resolve)$")],
                               note: Annotated[views.Text, Form(max_length=500)] = "") -> Response:
        staff = await signed_in(request)
        if staff is None:
            return to_sign_in()
        async with units() as uow:
            decision_id = await service.change_work_item(uow, staff, action, item_id, note, clock())
        wake()
        return RedirectResponse(f"/work-items?decision={decision_id}", status_code=303)

    @router.get("/dashboard", response_model=None)
    async def dashboard(request: Request, query: Annotated[views.DashboardFilter, Query()]) -> Response:
        staff = await signed_in(request)
        if staff is None:
            return to_sign_in()
        async with units() as uow:
            found = await service.dashboard(uow, staff, query, clock(), reporting_timezone)
        return page(request, "dashboard.html", staff=staff, d=found, charts=dashboard_charts(found),
                    zone=reporting_timezone)

    return router


def dashboard_charts(found: views.Dashboard) -> dict[str, Markup]:
    """The dashboard's pictures; the page shows each chart's figures in a table beside it."""
    money_by_day = [charts.Bar(f"{row.day.isoformat()} {row.currency}", row.cents, money(row.cents, row.currency))
                    for row in found.refunds_per_day]
    return {
        "rates": charts.bars("After-sales rate per sku", [
            charts.Bar(r.name, r.per_mille or 0, f"{per_mille(r.per_mille)} ({r.in_tickets}/{r.sold})")
            for r in sorted(found.by_sku, key=lambda r: -(r.per_mille or 0))[:15]]),
        "categories": charts.bars("After-sales rate per category", [
            charts.Bar(r.name, r.per_mille or 0, f"{per_mille(r.per_mille)} ({r.in_tickets}/{r.sold})")
            for r in found.by_category]),
        "reasons": charts.bars("Tickets per type and reason",
                               [charts.Bar(c.key, c.value, str(c.value)) for c in found.reasons[:15]]),
        "time_in_state": charts.bars("Time in state, p95 (p50 in the table)", [
            charts.Bar(t.status, t.p95_seconds, duration(t.p95_seconds)) for t in found.time_in_state]),
        "refunds": charts.bars("Refunds per day", money_by_day),
        "ageing": charts.bars("Open work items by age", [
            charts.Bar(c.key, c.value, str(c.value), series=index) for index, c in enumerate(found.queue_ageing)],
            empty="no open work items"),
    }


def age(at: datetime, now: datetime) -> str:
    return duration((now - at).total_seconds())


templates.env.globals.update(money=money, when=when, per_mille=per_mille, duration=duration, age=age)
