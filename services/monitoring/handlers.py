"""Monitoring subscribers: the facts that move its figures, the alerts that become work items,
and people's commands on those items."""

from __future__ import annotations

from contracts import aftersales as c
from contracts.admin import AcknowledgeWorkItem, ResolveWorkItem
from contracts.erp import ErpOrderAcknowledged
from contracts.ops import DeadLetter, DeadLetterSummary, OpsAlert, SettlementAdjusted
from contracts.orders import OrderPlaced
from contracts.topics import ADMIN_COMMANDS, DLQ, ERP_ACKS, OPS_ALERTS, ORDER_EVENTS, SETTLEMENT, TICKETS
from services.common.routes import Subscription, route
from services.common.tickets import command_rejected

from . import service
from .repository import MonitoringUnitOfWork


def subscriptions() -> list[Subscription[MonitoringUnitOfWork]]:
    return [
        Subscription(ORDER_EVENTS, [route(OrderPlaced, service.order_placed)]),
        Subscription(TICKETS, [route(c.TicketOpened, service.ticket_opened),
                               route(c.TicketStatusChanged, service.ticket_changed)]),
        Subscription(SETTLEMENT, [route(SettlementAdjusted, service.settlement_adjusted)]),
        Subscription(OPS_ALERTS, [route(OpsAlert, service.alert),
                                  route(DeadLetterSummary, service.dead_letters_summarised)]),
        Subscription(ERP_ACKS, [route(ErpOrderAcknowledged, service.erp_acknowledged)]),
        Subscription(DLQ, [route(DeadLetter, service.dead_letter)]),
        Subscription(ADMIN_COMMANDS, [route(AcknowledgeWorkItem, service.acknowledge),
                                      route(ResolveWorkItem, service.resolve)], on_rejected=command_rejected),
    ]
