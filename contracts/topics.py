"""The topic catalogue: every topic, its key, its messages, who writes and who reads it.

All topics are keyed by order id so that every message about one order stays in order.
Dead letters of any consumer go to ``aftersales.dlq`` (one topic; the source is in the payload).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import admin as ad
from . import aftersales as a
from . import decisions as d
from . import erp as e
from . import monitoring as m
from . import notifications as n
from . import ops as o
from . import orders as od
from . import payments as p
from . import warehouse as w
from .envelope import Contract


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    messages: tuple[type[Contract], ...]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    key: str = "order_id"
    partitions: int | None = None  # None: the configured default
    extra_config: dict[str, str] = field(default_factory=dict)


# Every process that consumes through the shared runtime: each may dead-letter and raise alerts.
WORKERS = ("intake", "review", "finance", "warehouse", "erp_sync", "scheduler", "dead_letters", "monitoring",
           "notifications", "settlement", "back-office",
           "order-system", "payment-channel", "wms", "erp", "marketing")
# The rebuild and what-if tool (services/replay) reads the inputs (what people and outside systems
# wrote) from the start of the log, and nothing else; it writes no topic.
REPLAY = "replay"
# What people and outside systems wrote is kept for good: a rebuild replays it from the start.
# (The workers' own topics are made again by a replay, and keep the broker's 7 days.) Committed
# offsets must outlive any pause of a group (the broker's offsets.retention.minutes), or a group
# restarting from the earliest offset would meet inputs its inbox has forgotten.
KEPT_FOR_REPLAY = {"retention.ms": "-1", "retention.bytes": "-1"}

ORDER_EVENTS = Topic("orders.events", "Facts from the upstream order system",
                     (od.OrderPlaced, od.OrderPaid, od.OrderShipped, od.OrderCompleted, od.OrderClosed),
                     ("order-system",), ("intake", "finance", "order-system", "monitoring", "settlement", REPLAY),
                     extra_config=KEPT_FOR_REPLAY)
ORDER_COMMANDS = Topic("orders.commands", "Requests to the order system: close an order",
                       (od.CloseOrder,), ("intake", "finance", "scheduler"), ("order-system",))
REQUESTS = Topic("aftersales.requests", "Buyer requests and follow-ups from the buyer front end",
                 (a.RequestAfterSales, a.WithdrawTicket, a.SubmitReturnShipment, a.ConfirmExchangeReceived,
                  a.RefuseDelivery, a.QuoteAfterSales),
                 ("buyer-frontend",), ("intake", REPLAY), extra_config=KEPT_FOR_REPLAY)
QUOTES = Topic("aftersales.quotes", "What a request would refund, before the buyer sends it",
               (a.AfterSalesQuoted,), ("intake",), ("buyer-frontend",))
REJECTIONS = Topic("aftersales.rejections", "Refused requests and commands, with a readable reason",
                   (a.RequestRejected, a.CommandRejected),
                   ("intake", "review", "finance", "erp_sync", "scheduler", "monitoring"),
                   ("buyer-frontend", "back-office"))
TICKETS = Topic("aftersales.tickets", "Ticket opened and every ticket transition",
                (a.TicketOpened, a.TicketStatusChanged),
                ("intake", "review", "finance", "warehouse", "scheduler"),
                ("review", "finance", "warehouse", "erp_sync", "back-office", "monitoring", "notifications",
                 "settlement"))
DECISIONS = Topic("aftersales.decisions", "Ops, finance and manager decisions from the back office",
                  (d.ApproveTicket, d.RejectTicket, d.AdjustRefundAmount, d.SetRefundFlags,
                   d.ResolveIntervention, d.ApproveRefund, d.SendBackRefund, d.ApproveLargeRefund,
                   d.RetryRefund, d.ReissueMissingUnits),
                  ("back-office",), ("review", REPLAY), extra_config=KEPT_FOR_REPLAY)
ADMIN_COMMANDS = Topic("aftersales.admin-commands",
                       "Admins' and staff's commands from the back office: the reasons catalogue (intake), "
                       "restarting an ERP order that gave up (erp_sync), acknowledging and resolving work items "
                       "(monitoring), replaying a dead letter (every worker, each for its own consumer group)",
                       (ad.SaveReason, ad.SetReasonVisible, ad.DeleteReason, ad.ReorderReasons, ad.RestartErpOrder,
                        ad.ReplayDeadLetter, ad.AcknowledgeWorkItem, ad.ResolveWorkItem),
                       ("back-office",),
                       ("intake", "review", "finance", "warehouse", "erp_sync", "dead_letters", "monitoring",
                        "back-office", REPLAY),
                       key="reasons.<type>, order id, or dlq.<dead letter id>", extra_config=KEPT_FOR_REPLAY)
REFUND_COMMANDS = Topic("payments.refund-commands", "Refunds to execute on the original payment route",
                        (p.ExecuteRefund,), ("finance",), ("payment-channel",))
REFUND_RESULTS = Topic("payments.refund-results", "Payment channel answers",
                       (p.RefundSucceeded, p.RefundFailed), ("payment-channel",), ("finance", REPLAY),
                       extra_config=KEPT_FOR_REPLAY)
WMS_COMMANDS = Topic("wms.commands", "Expected receipts, after-sales shipments, goods sent back, intercepts",
                     (w.ExpectReturn, w.ShipAfterSales, w.ReturnGoodsToBuyer, w.InterceptShipment,
                      w.ReleaseIntercept),
                     ("warehouse", "review"), ("wms",))
WMS_EVENTS = Topic("wms.events", "Goods received and inspected, dispatched, intercept results, repair progress",
                   (w.GoodsReceived, w.AfterSalesDispatched, w.InterceptResult, w.RepairProgress),
                   ("wms",), ("warehouse", "review", REPLAY), extra_config=KEPT_FOR_REPLAY)
ERP_OUTBOUND = Topic("erp.outbound", "Return-receipt and exchange-shipment orders for merchants' ERPs, "
                     "and their cancels", (e.ErpOrderRequested, e.CancelErpOrder), ("erp_sync",), ("erp",))
ERP_ACKS = Topic("erp.acks", "ERP acknowledgements of orders and cancels",
                 (e.ErpOrderAcknowledged, e.ErpOrderCancelled), ("erp",), ("erp_sync", "monitoring", REPLAY),
                 extra_config=KEPT_FOR_REPLAY)
OPS_ALERTS = Topic("ops.alerts", "Alerts for ops monitoring (SLA breaches, failed refunds, integration errors, "
                   "outages, parked items, dead-letter counts)",
                   (o.OpsAlert, o.DeadLetterSummary), WORKERS, ("ops", "monitoring"))
SETTLEMENT = Topic("settlement.adjustments", "Merchant settlement reduced by completed refunds (fee and "
                   "subsidy recomputed in proportion)",
                   (o.SettlementAdjusted,), ("finance",), ("settlement", "monitoring"))
COMPENSATIONS = Topic("marketing.compensations", "Coupons and virtual currency to give back",
                      (o.ReturnCompensation,), ("finance",), ("marketing",))
COMPENSATION_ACKS = Topic("marketing.compensation-acks", "Marketing acknowledgements",
                          (o.CompensationAcknowledged,), ("marketing",), ("finance", REPLAY),
                          extra_config=KEPT_FOR_REPLAY)
DLQ = Topic("aftersales.dlq", "Dead letters: original message, error class, reason code, source offset",
            (o.DeadLetter,), WORKERS, ("dead_letters", "ops", "monitoring"), key="original key (or invalid-key)")
WORK_ITEMS = Topic("monitoring.work-items", "Alerts as work: opened, repeated, acknowledged, escalated, resolved",
                   (m.WorkItemChanged,), ("monitoring",), ("ops", "back-office"))
BUYER_FLAGS = Topic("monitoring.buyer-flags", "Buyers past their shop's serial-returner threshold, with why",
                    (m.BuyerFlagged,), ("monitoring",), ("ops",), key="order id of the ticket that passed it")
DAILY_FIGURES = Topic("monitoring.daily-figures", "Each shop's after-sales figures per day, as they stand",
                      (m.DailyFiguresChanged,), ("monitoring",), ("ops",), key="<shop id>.<day>")
LINE_STATES = Topic("orders.line-after-sales", "Each order line's after-sales state (售后中 / 已退款) for the "
                    "order page, whenever it changes", (m.LineAfterSalesChanged,), ("monitoring",),
                    ("order-system",))

NOTIFICATIONS = Topic("buyer.notifications", "What the buyer is told about their after-sales request, as a "
                      "template key and its values", (n.BuyerNotification,), ("notifications",),
                      ("buyer-frontend", "messaging"))

CATALOGUE: tuple[Topic, ...] = (
    ORDER_EVENTS, ORDER_COMMANDS, REQUESTS, QUOTES, REJECTIONS, TICKETS, DECISIONS, ADMIN_COMMANDS, REFUND_COMMANDS,
    REFUND_RESULTS, WMS_COMMANDS, WMS_EVENTS, ERP_OUTBOUND, ERP_ACKS, OPS_ALERTS, SETTLEMENT,
    COMPENSATIONS, COMPENSATION_ACKS, DLQ, WORK_ITEMS, BUYER_FLAGS, DAILY_FIGURES, LINE_STATES,
    NOTIFICATIONS,
)


BY_NAME: dict[str, Topic] = {t.name: t for t in CATALOGUE}


def topic_of(message_type: type[Contract]) -> Topic:
    """The single topic a message type is published on."""
    for topic in CATALOGUE:
        if message_type in topic.messages:
            return topic
    raise KeyError(f"{message_type.__name__} is on no topic")
