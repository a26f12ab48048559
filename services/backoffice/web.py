"""The back office's HTTP API (FastAPI): thin routes over the use cases in ``service``.

Every route but sign-in needs a session: a bearer token or the session cookie the sign-in sets
(HttpOnly, SameSite=Strict, so another site cannot ride it). Unauthenticated → 401, wrong role or
shop → 403, unknown → 404, bad input → 422 naming the field and the rule, never the value
(it may be personal data); an unexpected error → 500 with no trace; PostgreSQL unreachable → 503.

Why this module has no ``from __future__ import annotations``: FastAPI reads the routes'
annotations at definition time, and several name objects local to ``create_api``.
"""

import csv
import inspect
import io
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy.exc import DBAPIError

from contracts import admin as ad
from contracts import decisions as d
from contracts.aftersales import AfterSalesType
from services.common.failures import describe, sqlstate
from services.common.logging import get_logger

from . import service, views
from .pages import SESSION_COOKIE, create_pages, set_session_cookie
from .repository import BackOfficeUnitOfWork
from .staff import Staff

log = get_logger("backoffice.web")

Units = Callable[[], BackOfficeUnitOfWork]
Clock = Callable[[], datetime]


class NotSignedIn(Exception):
    pass


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignIn(Body):
    username: views.Text = Field(min_length=1, max_length=64)
    password: views.Text = Field(min_length=1, max_length=200)


class Session(BaseModel):
    token: str
    expires_at: datetime
    user_id: str
    role: str
    shops: list[str]


class Me(BaseModel):
    user_id: str
    username: str
    role: str
    shops: list[str]


class Note(Body):
    note: views.Text = Field("", max_length=500)


class ReturnDesk(Body):
    recipient: views.Text = Field(min_length=1, max_length=64)
    phone: views.Text = Field(min_length=1, max_length=32)
    address: views.Text = Field(min_length=1, max_length=300)
    instructions: views.Text = Field("", max_length=500)


class Approval(Body):
    note: views.Text = Field("", max_length=500)
    return_address: ReturnDesk | None = Field(
        None, description="Where the buyer sends the goods back; the shop's return desk when left out")


class Reason(Body):
    reason: views.Text = Field(min_length=1, max_length=500)


class LineAmount(Body):
    line_no: StrictInt = Field(ge=1)
    refund_cents: StrictInt = Field(ge=0, le=10**12)


class RefundAmount(Body):
    lines: list[LineAmount] = Field(min_length=1, max_length=200)
    reason: views.Text = Field(min_length=1, max_length=500)


class RefundFlags(Body):
    refund_coupon: StrictBool = False
    refund_virtual_currency: StrictBool = False
    refund_shipping: StrictBool = False


class Reissue(Body):
    note: views.Text = Field(min_length=1, max_length=500, description="What was missing from the parcel")


class Intervention(Body):
    outcome: d.InterventionOutcome
    lines: list[LineAmount] = Field(default_factory=list, max_length=200)
    note: views.Text = Field(min_length=1, max_length=500)


class ReasonLabel(Body):
    label: views.Text = Field(min_length=1, max_length=200)


class ReasonVisibility(Body):
    visible: StrictBool


class ReasonOrder(Body):
    codes: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=100)


class Accepted(BaseModel):
    """The command is recorded and on its way to the review worker; nothing is decided yet."""

    decision_id: uuid.UUID
    status: str = "accepted"
    outcome_at: str = Field(description="Where the worker's answer appears")


def create_api(units: Units, clock: Clock, *, wake: Callable[[], None] = lambda: None,
               cookie_secure: bool = True, reporting_timezone: str = "Asia/Shanghai") -> FastAPI:
    """The app; ``units`` opens a unit of work per request, ``wake`` tells the outbox relay a
    decision is waiting (it also polls); the dashboard's days are ``reporting_timezone``'s."""
    api = FastAPI(title="After-sales back office", version="1",
                  description="Ticket lists and details, the finance list and decisions for ops, finance, "
                              "managers and admins. Decisions are accepted here and applied by the workers.")

    async def staff(request: Request) -> Staff:
        token = _token(request)
        if token is None:
            raise NotSignedIn
        async with units() as uow:
            found = await service.signed_in(uow, token, clock())
        if found is None:
            raise NotSignedIn
        return found

    Signed = Annotated[Staff, Depends(staff)]
    TicketId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
    router = APIRouter(prefix="/api")

    @router.post("/session", response_model=Session, tags=["sign-in"])
    async def sign_in(body: SignIn, response: Response) -> Session:
        async with units() as uow:
            token, expires_at = await service.sign_in(uow, body.username, body.password, clock())
            person = await service.signed_in(uow, token, clock())
        if person is None:  # cannot happen: the session was just committed
            raise NotSignedIn
        set_session_cookie(response, token, expires_at, secure=cookie_secure)
        return Session(token=token, expires_at=expires_at, user_id=person.user_id, role=person.role.value,
                       shops=sorted(person.shops))

    @router.delete("/session", status_code=204, tags=["sign-in"])
    async def sign_out(request: Request, person: Signed) -> Response:
        token = _token(request)
        if token is not None:
            async with units() as uow:
                await service.sign_out(uow, token)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/me", response_model=Me, tags=["sign-in"])
    async def me(person: Signed) -> Me:
        return Me(user_id=person.user_id, username=person.username, role=person.role.value,
                  shops=sorted(person.shops))

    @router.get("/tickets", response_model=views.TicketPage, tags=["tickets"])
    async def tickets(person: Signed, query: Annotated[views.TicketFilter, Query()]) -> views.TicketPage:
        async with units() as uow:
            return await service.ticket_list(uow, person, query)

    @router.get("/tickets/{ticket_id}", response_model=views.TicketDetail, tags=["tickets"])
    async def ticket(person: Signed, ticket_id: TicketId) -> views.TicketDetail:
        async with units() as uow:
            return await service.ticket_detail(uow, person, ticket_id)

    def accepted(decision_id: uuid.UUID) -> Accepted:
        """The command is committed to the outbox: the relay need not wait for its next poll."""
        wake()
        return Accepted(decision_id=decision_id, outcome_at=f"/api/decisions/{decision_id}")

    def decide(path: str, kind: type[d.Decision], body_model: type[BaseModel] | None, summary: str) -> None:
        async def submit(person: Staff, ticket_id: str, fields: dict[str, Any]) -> Accepted:
            async with units() as uow:
                return accepted(await service.submit(uow, person, kind, ticket_id, fields, clock()))

        async def endpoint(person: Staff, ticket_id: str, body: BaseModel | None = None) -> Accepted:
            return await submit(person, ticket_id, {} if body is None else body.model_dump(mode="json"))

        parameters = [inspect.Parameter("person", inspect.Parameter.KEYWORD_ONLY, annotation=Signed),
                      inspect.Parameter("ticket_id", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=TicketId)]
        if body_model is not None:
            parameters.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body_model))
        endpoint.__signature__ = inspect.Signature(parameters, return_annotation=Accepted)  # type: ignore[attr-defined]
        router.add_api_route(f"/tickets/{{ticket_id}}/{path}", endpoint, methods=["POST"], status_code=202,
                             response_model=Accepted, summary=summary, tags=["decisions"],
                             name=f"decide_{path.replace('-', '_')}")

    decide("approve", d.ApproveTicket, Approval, "Ops approves (a return: with the address the goods go back to)")
    decide("reject", d.RejectTicket, Reason, "Ops (or a manager, for a large amount) rejects, with a reason")
    decide("refund-amount", d.AdjustRefundAmount, RefundAmount, "Ops lowers the refund, with a reason")
    decide("refund-flags", d.SetRefundFlags, RefundFlags, "Ops sets coupon, virtual currency, shipping refund")
    decide("intervention", d.ResolveIntervention, Intervention, "Ops resolves an intervention")
    decide("reissue", d.ReissueMissingUnits, Reissue, "Ops sends missing units again (补发) instead of a refund")
    decide("finance-approval", d.ApproveRefund, Note, "Finance approves the refund")
    decide("send-back", d.SendBackRefund, Reason, "Finance sends the ticket back to ops, with a reason")
    decide("manager-approval", d.ApproveLargeRefund, Note, "A manager approves a large amount")
    decide("refund-retry", d.RetryRefund, None, "Finance retries a failed refund")

    @router.get("/decisions/{decision_id}", response_model=views.Decision, tags=["decisions"])
    async def decision(person: Signed, decision_id: uuid.UUID) -> views.Decision:
        async with units() as uow:
            return await service.decision(uow, person, decision_id)

    @router.get("/finance/refunds", response_model=list[views.FinanceRefund], tags=["finance"])
    async def finance_refunds(person: Signed) -> list[views.FinanceRefund]:
        async with units() as uow:
            return await service.finance_refunds(uow, person)

    @router.get("/finance/refunds.csv", tags=["finance"], response_class=Response,
                responses={200: {"content": {"text/csv": {}}}})
    async def finance_refunds_csv(person: Signed) -> Response:
        async with units() as uow:
            refunds = await service.finance_refunds(uow, person, limit=10_000)
        return Response(_csv(refunds), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="finance-refunds.csv"'})

    @router.get("/failures", response_model=views.Failures, tags=["finance"])
    async def failures(person: Signed) -> views.Failures:
        async with units() as uow:
            return await service.failures(uow, person)

    ReasonType = Annotated[AfterSalesType, Path()]
    ReasonCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")]

    @router.get("/reasons/{ticket_type}", response_model=list[views.ReasonView], tags=["reasons"])
    async def reasons(person: Signed, ticket_type: ReasonType) -> list[views.ReasonView]:
        async with units() as uow:
            return await service.reasons(uow, ticket_type.value)

    @router.put("/reasons/{ticket_type}/{code}", status_code=202, response_model=Accepted, tags=["reasons"],
                summary="An admin adds a reason or edits its label")
    async def save_reason(person: Signed, ticket_type: ReasonType, code: ReasonCode, body: ReasonLabel) -> Accepted:
        async with units() as uow:
            return accepted(await service.change_reasons(uow, person, ad.SaveReason, ticket_type.value,
                                                         {"code": code, "label": body.label}, clock()))

    @router.put("/reasons/{ticket_type}/{code}/visibility", status_code=202, response_model=Accepted,
                tags=["reasons"], summary="An admin hides a reason from buyers or shows it again")
    async def reason_visibility(person: Signed, ticket_type: ReasonType, code: ReasonCode,
                                body: ReasonVisibility) -> Accepted:
        async with units() as uow:
            return accepted(await service.change_reasons(uow, person, ad.SetReasonVisible, ticket_type.value,
                                                         {"code": code, "visible": body.visible}, clock()))

    @router.delete("/reasons/{ticket_type}/{code}", status_code=202, response_model=Accepted, tags=["reasons"])
    async def delete_reason(person: Signed, ticket_type: ReasonType, code: ReasonCode) -> Accepted:
        async with units() as uow:
            return accepted(await service.change_reasons(uow, person, ad.DeleteReason, ticket_type.value,
                                                         {"code": code}, clock()))

    @router.put("/reasons/{ticket_type}", status_code=202, response_model=Accepted, tags=["reasons"],
                summary="An admin puts the type's reasons in a new order (every reason, each once)")
    async def reorder_reasons(person: Signed, ticket_type: ReasonType, body: ReasonOrder) -> Accepted:
        async with units() as uow:
            return accepted(await service.change_reasons(uow, person, ad.ReorderReasons, ticket_type.value,
                                                         {"codes": body.codes}, clock()))

    @router.post("/erp-orders/{erp_order_id}/restart", status_code=202, response_model=Accepted,
                 tags=["finance"], summary="Restart an ERP order that gave up (see /api/failures)")
    async def restart_erp_order(person: Signed, erp_order_id: uuid.UUID) -> Accepted:
        async with units() as uow:
            return accepted(await service.restart_erp_order(uow, person, erp_order_id, clock()))

    @router.get("/dead-letters", response_model=list[views.DeadLetter], tags=["admin"])
    async def dead_letters(person: Signed) -> list[views.DeadLetter]:
        async with units() as uow:
            return await service.dead_letters(uow, person)

    @router.get("/dead-letters/{dead_letter_id}", response_model=views.DeadLetterDetail, tags=["admin"])
    async def dead_letter(person: Signed, dead_letter_id: uuid.UUID) -> views.DeadLetterDetail:
        async with units() as uow:
            return await service.dead_letter(uow, person, dead_letter_id)

    @router.post("/dead-letters/{dead_letter_id}/replay", status_code=202, response_model=Accepted, tags=["admin"],
                 summary="The consumer group that gave up reads the message back from its source and tries again")
    async def replay_dead_letter(person: Signed, dead_letter_id: uuid.UUID) -> Accepted:
        async with units() as uow:
            return accepted(await service.replay_dead_letter(uow, person, dead_letter_id, clock()))

    @router.get("/work-items", response_model=list[views.WorkItem], tags=["monitoring"])
    async def work_items(person: Signed, query: Annotated[views.WorkItemFilter, Query()]) -> list[views.WorkItem]:
        async with units() as uow:
            return await service.work_items(uow, person, query)

    @router.post("/work-items/{item_id}/{action}", status_code=202, response_model=Accepted, tags=["monitoring"],
                 summary="The owner team (or an admin or manager) acknowledges or resolves a work item")
    async def change_work_item(person: Signed, item_id: uuid.UUID,
                               action: Annotated[str, Path(pattern="^(acknowledge|resolve)$")],
                               body: Note | None = None) -> Accepted:
        async with units() as uow:
            return accepted(await service.change_work_item(uow, person, action, item_id,
                                                           body.note if body else "", clock()))

    @router.get("/dashboard", response_model=views.Dashboard, tags=["monitoring"])
    async def dashboard(person: Signed, query: Annotated[views.DashboardFilter, Query()]) -> views.Dashboard:
        async with units() as uow:
            return await service.dashboard(uow, person, query, clock(), reporting_timezone)

    api.include_router(router)
    api.include_router(create_pages(units, clock, wake=wake, cookie_secure=cookie_secure,
                                    reporting_timezone=reporting_timezone))
    _errors(api)
    return api


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE) or None


def _csv(refunds: list[views.FinanceRefund]) -> str:
    """One row per line (DOMAIN.md's finance list), the ticket's total on each of its rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["ticket_no", "order_id", "shop_id", "status", "applied_at", "reviewed_at", "line_no", "sku",
                     "unit_price_cents", "quantity", "line_refund_cents", "total_cents", "currency"])
    for r in refunds:
        for ln in r.lines:
            writer.writerow([r.ticket_no, r.order_id, r.shop_id, r.status, r.applied_at.isoformat(),
                             r.reviewed_at.isoformat() if r.reviewed_at else "", ln.line_no, ln.sku,
                             "" if ln.unit_price_cents is None else ln.unit_price_cents, ln.quantity,
                             ln.refund_cents, r.total_cents, r.currency])
    return out.getvalue()


def _errors(api: FastAPI) -> None:
    def answer(status: int, detail: Any, **headers: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)

    @api.exception_handler(NotSignedIn)
    async def not_signed_in(_: Request, __: Exception) -> JSONResponse:
        return answer(401, "sign in first", **{"WWW-Authenticate": "Bearer"})

    @api.exception_handler(service.SignInRefused)
    async def refused(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, service.AccountLocked):
            return answer(429, "too many wrong passwords: try again in a quarter of an hour", **{"Retry-After": "900"})
        return answer(401, "wrong username or password")

    @api.exception_handler(service.Forbidden)
    async def forbidden(_: Request, exc: Exception) -> JSONResponse:
        return answer(403, str(exc))

    @api.exception_handler(service.InvalidDecision)
    async def invalid_decision(_: Request, exc: Exception) -> JSONResponse:
        return answer(422, str(exc))

    @api.exception_handler(service.NotFound)
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return answer(404, str(exc))

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        # the field and the rule only: FastAPI's default echoes the input, which may be personal data
        return answer(422, [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                            for e in errors])

    @api.exception_handler(DBAPIError)
    async def database(_: Request, exc: Exception) -> JSONResponse:
        log.warning("backoffice_database_error", error=describe(exc))
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return answer(503, "the database is unreachable; try again shortly")
        if (sqlstate(exc) or "").startswith("22"):  # data the database refuses: the input's fault
            return answer(422, "the input holds data that cannot be stored")
        return answer(500, "internal error")

    @api.exception_handler(OSError)
    async def unreachable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("backoffice_unreachable", error=describe(exc))
        return answer(503, "a service is unreachable; try again shortly")

    @api.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("backoffice_error", error=describe(exc))
        return answer(500, "internal error")
