"""The ACLs generated from the topic catalogue: each service may write exactly the topics it
produces and read exactly those it consumes; the decisions and payment-result topics have one
writer each."""

from __future__ import annotations

import pytest

from contracts.topics import CATALOGUE, DECISIONS, REFUND_RESULTS
from services.common.kafka_access import Grant, may_write, plan, principals


def test_only_the_back_office_may_write_decisions_and_only_the_channel_payment_results() -> None:
    writers = {topic: {g.principal for g in plan("aftersales") if g.operation == "WRITE" and g.name == topic}
               for topic in (DECISIONS.name, REFUND_RESULTS.name)}
    assert writers == {DECISIONS.name: {"back-office"}, REFUND_RESULTS.name: {"payment-channel"}}


@pytest.mark.parametrize("principal", principals())
def test_a_service_writes_what_it_produces_and_reads_what_it_consumes_nothing_else(principal: str) -> None:
    grants = {g for g in plan("aftersales") if g.principal == principal}
    assert {g.name for g in grants if g.operation == "WRITE"} == {
        t.name for t in CATALOGUE if principal in t.producers}
    assert {g.name for g in grants if g.operation == "READ" and g.resource == "TOPIC"} == {
        t.name for t in CATALOGUE if principal in t.consumers}
    groups = {g for g in grants if g.resource == "GROUP"}
    assert groups == ({Grant(principal, "READ", "GROUP", f"aftersales.{principal}", prefixed=True)}
                      if any(principal in t.consumers for t in CATALOGUE) else set())


def test_a_consumer_writes_no_topic_it_only_reads() -> None:
    assert not may_write("intake", "aftersales.decisions")
    assert not may_write("finance", "payments.refund-results")
    assert may_write("finance", "payments.refund-commands")
