"""The order projection applies facts in order; early facts are parked, late ones ignored."""


from services.domain.model import OrderState
from services.domain.order import Applied

from .builders import T0, order


def test_facts_apply_in_order():
    o = order(OrderState.PENDING_PAYMENT)
    assert o.mark_paid(T0) == Applied.APPLIED
    assert o.mark_shipped(T0) == Applied.APPLIED
    assert o.mark_completed(T0) == Applied.APPLIED
    assert o.state == OrderState.COMPLETED


def test_completed_before_shipped_is_not_yet_applicable():
    o = order(OrderState.PAID)
    assert o.mark_completed(T0) == Applied.NOT_YET
    assert o.state == OrderState.PAID


def test_duplicates_and_superseded_facts_are_stale():
    o = order(OrderState.SHIPPED)
    assert o.mark_paid(T0) == Applied.STALE
    assert o.mark_shipped(T0) == Applied.STALE


def test_closed_is_final():
    o = order(OrderState.PAID)
    assert o.mark_closed(T0) == Applied.APPLIED
    assert o.mark_shipped(T0) == Applied.STALE
    assert o.mark_closed(T0) == Applied.STALE

