"""Review subscribers, by message type: new tickets, back-office decisions, intercept results."""

from __future__ import annotations

from contracts import aftersales as c
from contracts import decisions as d
from contracts.topics import DECISIONS, TICKETS, WMS_EVENTS
from contracts.warehouse import InterceptResult
from services.common.routes import Subscription, route
from services.common.tickets import command_rejected

from . import service
from .repository import ReviewUnitOfWork


def subscriptions() -> list[Subscription[ReviewUnitOfWork]]:
    return [
        Subscription(TICKETS, [route(c.TicketOpened, service.on_ticket_opened, only=service.intercepts),
                               route(c.TicketStatusChanged, service.on_ticket_changed, only=service.releases)],
                     on_rejected=command_rejected),
        Subscription(DECISIONS, [
            route(d.ApproveTicket, service.approve),
            route(d.RejectTicket, service.reject),
            route(d.AdjustRefundAmount, service.adjust_refund_amount),
            route(d.SetRefundFlags, service.set_refund_flags),
            route(d.ResolveIntervention, service.resolve_intervention),
            route(d.ReissueMissingUnits, service.reissue_missing_units),
            route(d.ApproveLargeRefund, service.approve_large_refund),
            route(d.ApproveRefund, service.approve_refund),
            route(d.SendBackRefund, service.send_back_refund),
            route(d.RetryRefund, service.retry_refund),
        ], on_rejected=command_rejected),
        Subscription(WMS_EVENTS, [route(InterceptResult, service.on_intercept_result)]),
    ]
