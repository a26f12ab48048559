"""The ticket state machine: every flow of DOMAIN.md, roles, maker-checker, caps, deadlines."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import errors
from services.domain.model import SYSTEM, Actor, AfterSalesType, Inspection, Role
from services.domain.model import TicketStatus as S
from services.domain.policy import Policy
from services.domain.ticket import Alert, Ticket

from .builders import T0, ticket

OPS = Actor(Role.OPS, "ops-1")
OPS2 = Actor(Role.OPS, "ops-2")
FIN = Actor(Role.FINANCE, "fin-1")
MGR = Actor(Role.MANAGER, "mgr-1")
BUYER = Actor(Role.BUYER, "B1")
WH = Actor(Role.WAREHOUSE, "wh-1")
P = Policy()
NOW = T0 + timedelta(hours=2)
DESK = {"recipient": "Returns desk", "phone": "400-000-0000", "address": "1 Test Road", "instructions": ""}


def test_refund_only_goes_from_review_to_finance_to_completed():
    t = ticket()
    t.approve(OPS, NOW, P, return_address=DESK)
    assert t.status == S.PENDING_REFUND
    t.approve_refund(FIN, NOW, P)
    assert t.status == S.REFUNDING
    t.refund_succeeded(NOW, P, 6666)
    assert t.status == S.COMPLETED
    assert t.deadline_at is None
    assert [c.action for c in t.changes] == ["approve", "finance_approve", "refund_succeeded"]


def test_finance_can_send_back_and_ops_can_re_approve():
    t = ticket()
    t.approve(OPS, NOW, P, return_address=DESK)
    t.send_back(FIN, NOW, P, "missing call note")
    assert t.status == S.PENDING_REVIEW
    t.approve(OPS, NOW, P, return_address=DESK)
    assert t.status == S.PENDING_REFUND


def test_the_same_person_cannot_review_and_approve_the_money():
    t = ticket()
    t.approve(OPS, NOW, P, return_address=DESK)
    with pytest.raises(errors.MakerCheckerViolation):
        t.approve_refund(Actor(Role.FINANCE, "ops-1"), NOW, P)
    assert t.status == S.PENDING_REFUND


def test_large_amounts_need_a_manager_between_ops_and_finance():
    t = ticket(refund=600_000, cap=600_000)
    t.approve(OPS, NOW, P, return_address=DESK)
    assert t.status == S.PENDING_MANAGER
    with pytest.raises(errors.IllegalTransition):
        t.approve_refund(FIN, NOW, P)
    with pytest.raises(errors.MakerCheckerViolation):
        t.approve_large_amount(Actor(Role.MANAGER, "ops-1"), NOW, P)
    t.approve_large_amount(MGR, NOW, P)
    assert t.status == S.PENDING_REFUND


def test_finance_approval_may_be_automatic_by_policy():
    t = ticket()
    t.approve(OPS, NOW, Policy(finance_auto_approve_refund_only=True), return_address=DESK)
    assert t.status == S.REFUNDING
    assert t.finance_reviewer_id == "system"
    small = ticket()
    small.approve(OPS, NOW, Policy(finance_auto_approve_below_cents=10_000), return_address=DESK)
    assert small.status == S.REFUNDING


def test_reject_needs_a_reason_the_buyer_can_read():
    t = ticket()
    with pytest.raises(errors.ReasonRequired):
        t.reject(OPS, NOW, P, "  ")
    t.reject(OPS, NOW, P, "goods were used")
    assert t.status == S.CLOSED
    assert t.close_reason == "goods were used"


def test_nobody_may_raise_the_refund_above_the_cap_and_lowering_needs_a_reason():
    t = ticket()
    with pytest.raises(errors.AmountAboveCap):
        t.adjust_refund(OPS, NOW, P, {1: 6667}, "more")
    with pytest.raises(errors.InvalidAmount):
        t.adjust_refund(OPS, NOW, P, {1: -1}, "negative")
    with pytest.raises(errors.ReasonRequired):
        t.adjust_refund(OPS, NOW, P, {1: 5000}, "")
    t.adjust_refund(OPS, NOW, P, {1: 5000}, "restocking fee")
    assert t.refund_total_cents == 5000
    assert (t.changes[-1].amount_before_cents, t.changes[-1].amount_after_cents) == (6666, 5000)


@pytest.mark.parametrize(("actor", "method"), [
    (BUYER, "approve"), (FIN, "approve"), (WH, "approve"), (OPS, "approve_refund"), (BUYER, "approve_refund")])
def test_roles_are_enforced(actor, method):
    t = ticket()
    if method == "approve_refund":
        t.approve(OPS2, NOW, P, return_address=DESK)
    with pytest.raises(errors.NotPermitted):
        getattr(t, method)(actor, NOW, P)


def test_illegal_transitions_change_nothing():
    t = ticket()
    with pytest.raises(errors.IllegalTransition):
        t.approve_refund(FIN, NOW, P)
    with pytest.raises(errors.IllegalTransition):
        t.confirm_received(SYSTEM, NOW, P)
    assert t.status == S.PENDING_REVIEW
    assert not t.changes


def returned(status_after: str) -> Ticket:
    """A return approved and shipped back by the buyer, then moved to ``status_after``."""
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.approve(OPS, NOW, P, return_address=DESK)
    if status_after == "AWAITING_RETURN":
        return t
    t.submit_return_shipment(Actor(Role.BUYER, "B1"), NOW, P, "SF", "SF1")
    if status_after == "INTERVENTION":
        t.on_deadline(NOW + P.receipt_window + timedelta(seconds=1), P)
        assert t.status == S.INTERVENTION
    return t


@pytest.mark.parametrize("before", ["AWAITING_RECEIPT", "INTERVENTION", "AWAITING_RETURN"])
def test_returned_goods_are_judged_whenever_they_arrive(before):
    t = returned(before)
    later = NOW + timedelta(days=15)
    t.record_inspection(WH, later, P, Inspection.PASSED, {"SKU-A": 2})
    assert t.status == S.PENDING_REFUND
    assert t.goods_received


@pytest.mark.parametrize("case", ["closed", "received twice", "refused parcel of a refund-only"])
def test_a_receipt_the_ticket_does_not_expect_is_recorded_with_an_alert(case):
    if case == "closed":
        t = returned("AWAITING_RETURN")
        t.on_deadline(NOW + P.return_window + timedelta(seconds=1), P)
    elif case == "received twice":
        t = returned("AWAITING_RECEIPT")
        t.record_inspection(WH, NOW, P, Inspection.PASSED, {"SKU-A": 2})
    else:
        t = ticket()
    status = t.status
    t.alerts.clear()
    t.record_inspection(WH, NOW, P, Inspection.PASSED, {"SKU-A": 2})
    assert t.status == status
    assert t.changes[-1].action == "receipt_unexpected"
    assert [a.kind for a in t.alerts] == ["UNEXPECTED_RECEIPT"]


def test_a_second_approval_is_an_illegal_transition():
    t = ticket()
    t.approve(OPS, NOW, P, return_address=DESK)
    with pytest.raises(errors.IllegalTransition):
        t.approve(OPS2, NOW, P, return_address=DESK)


def test_buyer_can_withdraw_before_money_moves_but_not_after():
    t = ticket()
    t.withdraw(BUYER, NOW, P)
    assert t.status == S.CLOSED
    paid = ticket()
    paid.approve(OPS, NOW, Policy(finance_auto_approve_refund_only=True), return_address=DESK)
    with pytest.raises(errors.IllegalTransition):
        paid.withdraw(BUYER, NOW, P)
    other = ticket()
    with pytest.raises(errors.NotPermitted):
        other.withdraw(Actor(Role.BUYER, "stranger"), NOW, P)


def test_return_and_refund_flow_with_passed_inspection():
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.approve(OPS, NOW, P, return_address=DESK)
    assert t.status == S.AWAITING_RETURN
    assert t.deadline_at == NOW + timedelta(days=7)
    t.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    assert t.status == S.AWAITING_RECEIPT
    assert t.deadline_at == NOW + timedelta(days=14)
    t.record_inspection(WH, NOW, P, Inspection.PASSED, {"SKU-A": 2})
    assert t.status == S.PENDING_REFUND


@pytest.mark.parametrize(("result", "received"), [
    (Inspection.WRONG_ITEM, {"SKU-A": 2}), (Inspection.PASSED, {"SKU-A": 1}), (Inspection.PASSED, {"SKU-Z": 2}),
    (Inspection.PASSED, {"SKU-A": 3})])
def test_inspection_mismatch_goes_to_intervention(result, received):
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.approve(OPS, NOW, P, return_address=DESK)
    t.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    t.record_inspection(WH, NOW, P, result, received)
    assert t.status == S.INTERVENTION
    assert t.alerts[0].kind == "INSPECTION_MISMATCH"


def test_intervention_negotiates_an_amount_or_sends_goods_back():
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.approve(OPS, NOW, P, return_address=DESK)
    t.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    t.record_inspection(WH, NOW, P, Inspection.DAMAGED_BY_BUYER, {"SKU-A": 2})
    with pytest.raises(errors.AmountAboveCap):
        t.resolve_intervention(OPS2, NOW, P, send_back=False, amounts={1: 7000}, note="x")
    t.resolve_intervention(OPS2, NOW, P, send_back=False, amounts={1: 3000}, note="agreed 30")
    assert t.status == S.PENDING_REFUND
    assert t.refund_total_cents == 3000
    back = ticket(AfterSalesType.RETURN_AND_REFUND)
    back.approve(OPS, NOW, P, return_address=DESK)
    back.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    back.record_inspection(WH, NOW, P, Inspection.WRONG_ITEM, {"SKU-A": 2})
    back.resolve_intervention(OPS2, NOW, P, send_back=True, amounts={}, note="not our item")
    assert back.status == S.SENDING_BACK  # the warehouse holds the goods: they go back first
    back.record_reshipment(WH, NOW, P, "SF", "SF-BACK")
    assert back.status == S.CLOSED


@pytest.mark.parametrize("ending", ["withdrawn", "rejected after a send-back"])
def test_a_ticket_whose_goods_are_in_the_warehouse_ends_only_by_sending_them_back(ending):
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.approve(OPS, NOW, P, return_address=DESK)
    t.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    t.record_inspection(WH, NOW, P, Inspection.PASSED, {"SKU-A": 2})
    assert t.status == S.PENDING_REFUND
    if ending == "withdrawn":
        t.withdraw(BUYER, NOW, P)
    else:
        t.send_back(FIN, NOW, P, "receipt photo missing")
        t.reject(OPS2, NOW, P, "the item was used")
    assert (t.status, t.deadline_kind) == (S.SENDING_BACK, "approval_sla")
    with pytest.raises(errors.IllegalTransition):
        t.approve_refund(Actor(Role.FINANCE, "fin-2"), NOW, P)  # no money for goods going back
    t.record_reshipment(WH, NOW, P, "SF", "SF-BACK")
    assert t.status == S.CLOSED
    assert "sent back" in t.changes[-1].reason


def test_a_ticket_closed_before_the_goods_came_back_ends_at_once():
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.approve(OPS, NOW, P, return_address=DESK)
    t.withdraw(BUYER, NOW, P)
    assert t.status == S.CLOSED


def test_exchange_flow_completes_on_buyer_confirmation_or_after_ten_days():
    t = ticket(AfterSalesType.EXCHANGE, refund=0, cap=0)
    t.approve(OPS, NOW, P, return_address=DESK)
    t.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    t.record_inspection(WH, NOW, P, Inspection.PASSED, {"SKU-A": 2})
    assert t.status == S.AWAITING_RESHIPMENT
    t.record_reshipment(WH, NOW, P, "SF", "SF2")
    assert t.status == S.RESHIPPED
    assert t.deadline_at == NOW + timedelta(days=10)
    t.on_deadline(NOW + timedelta(days=10), P)
    assert t.status == S.COMPLETED
    assert t.changes[-1].actor == SYSTEM


def test_repair_flow():
    t = ticket(AfterSalesType.REPAIR, refund=0, cap=0)
    t.approve(OPS, NOW, P, return_address=DESK)
    t.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    t.record_inspection(WH, NOW, P, Inspection.PASSED, {"SKU-A": 2})
    assert t.status == S.IN_REPAIR
    t.record_reshipment(WH, NOW, P, "SF", "SF3")
    t.confirm_received(BUYER, NOW, P)
    assert t.status == S.COMPLETED


def test_instant_refund_rule_needs_refund_only_before_shipment_within_30_minutes():
    assert ticket(before_shipment=True, applied_at=T0 + timedelta(minutes=20)).qualifies_for_instant_refund(P)
    assert not ticket(before_shipment=True, applied_at=T0 + timedelta(minutes=40)).qualifies_for_instant_refund(P)
    assert not ticket(before_shipment=False, applied_at=T0 + timedelta(minutes=20)).qualifies_for_instant_refund(P)


def test_intercept_success_approves_and_failure_leaves_it_to_a_person():
    t = ticket(before_shipment=True)
    t.request_intercept(NOW, P)
    assert t.deadline_kind == "intercept"
    t.record_intercept(NOW, P, intercepted=True)
    assert t.status == S.PENDING_REFUND
    assert t.changes[-1].actor == SYSTEM
    u = ticket(before_shipment=True)
    u.request_intercept(NOW, P)
    u.record_intercept(NOW, P, intercepted=False)
    assert u.status == S.PENDING_REVIEW
    assert u.deadline_kind == "review_sla"


def test_waiting_for_the_buyers_return_times_out_and_closes():
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.approve(OPS, NOW, P, return_address=DESK)
    t.on_deadline(NOW + timedelta(days=6), P)
    assert t.status == S.AWAITING_RETURN
    t.on_deadline(NOW + timedelta(days=7), P)
    assert t.status == S.CLOSED
    assert "timed out" in t.close_reason


def test_overdue_receipt_raises_an_alert_and_goes_to_intervention():
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.approve(OPS, NOW, P, return_address=DESK)
    t.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    t.on_deadline(NOW + timedelta(days=14), P)
    assert t.status == S.INTERVENTION
    assert t.alerts[0].kind == "RECEIPT_OVERDUE"


def test_review_sla_alerts_and_re_arms_and_may_auto_approve_refund_only():
    t = ticket()
    t.opened(P, BUYER)
    t.on_deadline(t.applied_at + timedelta(hours=72), P)
    assert t.status == S.PENDING_REVIEW
    assert t.alerts[0].kind == "PENDING_REVIEW_SLA_BREACHED"
    assert t.deadline_at == t.applied_at + timedelta(hours=96)
    shop = Policy(auto_approve_refund_only_on_review_sla=True)
    u = ticket()
    u.opened(shop, BUYER)
    u.on_deadline(u.applied_at + timedelta(hours=72), shop)
    assert u.status == S.PENDING_REFUND


@pytest.mark.parametrize("status", [s for s in S if s not in (S.COMPLETED, S.CLOSED)])
def test_every_waiting_state_has_a_deadline(status):
    t = ticket(AfterSalesType.RETURN_AND_REFUND)
    t.status = status
    t._set_deadline(P, NOW)
    assert t.deadline_at is not None
    assert t.deadline_at > NOW


def test_refund_failure_alerts_and_finance_can_retry():
    t = ticket()
    t.approve(OPS, NOW, Policy(finance_auto_approve_refund_only=True), return_address=DESK)
    t.refund_failed(NOW, P, "declined")
    assert t.status == S.REFUND_FAILED
    assert t.alerts[0].severity == "CRITICAL"
    t.retry_refund(FIN, NOW, P)
    assert t.status == S.REFUNDING


def test_cancel_completes_at_once():
    t = ticket(AfterSalesType.CANCEL, refund=0, cap=0)
    t.opened(P, BUYER)
    assert t.status == S.COMPLETED
    assert [c.action for c in t.changes] == ["open", "cancel"]


decision = st.sampled_from(["approve", "adjust", "finance_approve", "send_back", "manager", "withdraw",
                            "succeed", "fail", "retry", "flags"])


@given(st.lists(st.tuples(decision, st.integers(-10, 20_000)), max_size=25))
def test_no_sequence_of_decisions_refunds_more_than_the_cap(steps):
    """Whatever ops, finance, managers and buyers do, in any order, the refund never exceeds
    the cap, is never negative, and completes at most once."""
    t = ticket(refund=6666, cap=6666)
    actors = {"approve": OPS, "adjust": OPS, "finance_approve": FIN, "send_back": FIN, "manager": MGR,
              "withdraw": BUYER, "retry": FIN, "flags": OPS}
    completions = 0
    for action, amount in steps:
        try:
            if action == "approve":
                t.approve(OPS, NOW, P, return_address=DESK)
            elif action == "adjust":
                t.adjust_refund(OPS, NOW, P, {1: amount}, "agreed")
            elif action == "finance_approve":
                t.approve_refund(FIN, NOW, P)
            elif action == "send_back":
                t.send_back(FIN, NOW, P, "check")
            elif action == "manager":
                t.approve_large_amount(MGR, NOW, P)
            elif action == "withdraw":
                t.withdraw(BUYER, NOW, P)
            elif action == "succeed":
                t.refund_succeeded(NOW, P, t.refund_total_cents)
                completions += 1
            elif action == "fail":
                t.refund_failed(NOW, P, "declined")
            elif action == "retry":
                t.retry_refund(actors[action], NOW, P)
            else:
                t.set_flags(OPS, NOW, coupon=True, virtual_currency=False, shipping=False)
        except errors.DomainError:
            pass
        assert 0 <= t.refund_total_cents <= t.cap_total_cents
    assert completions <= 1
    if t.status == S.COMPLETED:
        assert t.changes[-1].action == "refund_succeeded"


def test_finance_sends_a_ticket_to_the_manager_when_the_whole_order_reaches_the_threshold():
    policy = Policy(large_amount_threshold_cents=10_000)
    t = ticket(refund=6_000, cap=6_000)
    t.approve(OPS, NOW, policy, return_address=DESK)
    t.approve_refund(FIN, NOW, policy)
    assert t.status == S.REFUNDING
    assert not t.check_order_total(NOW, policy, 9_999)
    assert t.check_order_total(NOW, policy, 10_000)
    assert (t.status, t.finance_reviewer_id) == (S.PENDING_MANAGER, None)
    t.approve_large_amount(Actor(Role.MANAGER, "mgr-1"), NOW, policy)
    t.approve_refund(FIN, NOW, policy)
    assert not t.check_order_total(NOW, policy, 10_000)  # the manager has approved it


def test_a_return_needs_an_address_for_the_goods_and_keeps_the_one_it_was_approved_with() -> None:
    t = ticket(type_=AfterSalesType.RETURN_AND_REFUND)
    with pytest.raises(errors.ReturnAddressMissing):
        t.approve(OPS, NOW, P)
    assert t.status == S.PENDING_REVIEW
    t.approve(OPS, NOW, P, return_address=DESK)
    assert (t.status, t.return_address) == (S.AWAITING_RETURN, DESK)


def test_repair_progress_is_on_the_timeline_and_an_impossible_repair_goes_to_a_person() -> None:
    t = ticket(AfterSalesType.REPAIR, refund=0, cap=0)
    t.approve(OPS, NOW, P, return_address=DESK)
    with pytest.raises(errors.IllegalTransition):
        t.record_repair_progress(WH, NOW, P, "DIAGNOSED", "too early")  # nothing to repair yet
    t.submit_return_shipment(BUYER, NOW, P, "SF", "SF1")
    t.record_inspection(WH, NOW, P, Inspection.PASSED, {"SKU-A": 2})
    t.changes.clear()
    t.record_repair_progress(WH, NOW, P, "WAITING_FOR_PARTS", "board ordered")
    assert t.status == S.IN_REPAIR
    (step,) = t.changes
    assert (step.from_status, step.to_status, step.action, step.reason) == (
        S.IN_REPAIR, S.IN_REPAIR, "repair_progress", "WAITING_FOR_PARTS: board ordered")
    with pytest.raises(errors.DomainError):
        t.record_repair_progress(OPS, NOW, P, "REPAIRED", "")  # the warehouse reports, nobody else
    t.record_repair_progress(WH, NOW, P, "CANNOT_REPAIR", "no spare board")
    assert t.status == S.INTERVENTION
    assert [a.kind for a in t.alerts] == ["REPAIR_IMPOSSIBLE"]



def test_a_copy_equals_the_ticket_and_shares_nothing_a_rule_changes() -> None:
    """TicketStore hands out copies of the tickets a batch locked: a rule changing one (or a
    savepoint's rollback dropping it) must not reach the kept ticket."""
    kept = ticket(AfterSalesType.RETURN_AND_REFUND)
    kept.approve(OPS, NOW, P, return_address=DESK)
    audited, lines = list(kept.changes), list(kept.lines)
    twin = kept.copy()
    assert twin == kept
    twin.lines.clear()
    twin.changes.clear()
    twin.alerts.append(Alert("TEST", "INFO", "only on the copy"))
    assert twin.return_address is not None
    twin.return_address["address"] = "elsewhere"
    twin.status = S.CLOSED
    assert kept.lines == lines
    assert kept.changes == audited
    assert kept.alerts == []
    assert kept.return_address == DESK
    assert kept.status == S.AWAITING_RETURN
