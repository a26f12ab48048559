"""The envelope and payloads: round trip, strict types, tolerant of unknown fields, clear errors."""

import uuid
from datetime import UTC, datetime

import orjson
import pytest

import contracts
from contracts import MalformedMessage, SchemaViolation, UnknownMessageType, decode, encode, new_envelope
from contracts.envelope import _ENVELOPES, _REGISTRY, _UPCASTERS, Contract, message, registry, upcaster
from contracts.orders import OrderPaid

from .samples import sample


@pytest.mark.parametrize("type_name", sorted(registry()))
def test_every_message_round_trips(type_name):
    envelope = new_envelope(sample(registry()[type_name]), key="O1", producer="test")
    assert decode(encode(envelope)) == envelope


def _raw(**changes):
    env = new_envelope(sample(contracts.orders.OrderPlaced), key="O1", producer="test")
    doc = orjson.loads(encode(env))
    for path, value in changes.items():
        node = doc
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[leaf] = value
    return orjson.dumps(doc)


def test_unknown_fields_are_ignored():
    assert decode(_raw(payload__brand_new_field="x", new_header=1)).payload.order_id == "S1"


@pytest.mark.parametrize(("field", "value"), [
    ("payload__lines__0__paid__cents", 12.5), ("payload__lines__0__paid__cents", "1250"),
    ("payload__lines__0__quantity", 2.0), ("payload__lines__0__quantity", -1),
    ("payload__lines__0__quantity", 10**9), ("payload__shipping_fee__cents", -5),
    ("payload__shipping_fee__currency", "yuan"), ("occurred_at", "yesterday"),
    ("payload__order_id", "O 1; drop table"), ("payload__lines", [])])
def test_wrong_types_are_schema_violations(field, value):
    with pytest.raises(SchemaViolation):
        decode(_raw(**{field: value}))


def test_a_missing_field_is_named_without_echoing_values():
    doc = orjson.loads(_raw())
    del doc["payload"]["buyer_id"]
    doc["payload"]["shop_id"] = "secret-name-13800138000"
    with pytest.raises(SchemaViolation) as err:
        decode(orjson.dumps(doc))
    assert "payload.buyer_id" in err.value.reason
    assert "13800138000" not in err.value.reason


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]", b"\xff\xfe", b'"text"'])
def test_malformed_messages_are_refused(raw):
    with pytest.raises((MalformedMessage, SchemaViolation)):
        decode(raw)


def test_unknown_types_and_newer_versions_are_refused():
    doc = orjson.loads(_raw())
    with pytest.raises(UnknownMessageType):
        decode(orjson.dumps({**doc, "type": "Nope"}))
    with pytest.raises(SchemaViolation, match="newer"):
        decode(orjson.dumps({**doc, "schema_version": 99}))


def test_a_caused_message_inherits_the_correlation_id():
    first = new_envelope(OrderPaid(order_id="O1", paid_at=sample(OrderPaid).paid_at), key="O1", producer="a")
    second = new_envelope(OrderPaid(order_id="O1", paid_at=first.payload.paid_at), key="O1", producer="b",
                          cause=first)
    assert second.correlation_id == first.correlation_id
    assert second.causation_id == first.event_id


def test_older_versions_are_upcast():
    name = f"TestRenamed{uuid.uuid4().hex[:6]}"
    try:
        @message(name, version=2)
        class Renamed(Contract):
            order_ref: str

        @upcaster(name, 1)
        def v1_to_v2(payload):
            return {"order_ref": payload["order_no"]}

        doc = orjson.loads(encode(new_envelope(Renamed(order_ref="x"), key="O1", producer="t")))
        doc["schema_version"] = 1
        doc["payload"] = {"order_no": "legacy-7"}
        assert decode(orjson.dumps(doc)).payload.order_ref == "legacy-7"
    finally:
        _REGISTRY.pop(name, None)
        _ENVELOPES.pop(name, None)
        _UPCASTERS.pop((name, 1), None)


def test_an_unknown_member_of_an_open_enum_is_kept_and_of_a_closed_enum_is_refused():
    from contracts import warehouse as w

    result = w.InterceptResult(ticket_id="T1", order_id="O1", outcome=w.InterceptOutcome.INTERCEPTED,
                               decided_at=datetime.now(UTC))
    doc = orjson.loads(encode(new_envelope(result, key="O1", producer="wms")))
    doc["payload"]["outcome"] = "PARTLY_INTERCEPTED"
    assert decode(orjson.dumps(doc)).payload.outcome == "PARTLY_INTERCEPTED"
    doc["payload"]["outcome"] = "not a member name"  # still a bounded, upper-case name or nothing
    with pytest.raises(SchemaViolation):
        decode(orjson.dumps(doc))
    received = w.GoodsReceived(receipt_id=uuid.uuid4(), ticket_id="T1", order_id="O1",
                               receipt_type=w.ReceiptType.RETURN_RECEIPT,
                               lines=[w.SkuQuantity(sku="S", quantity=1)], inspection=w.Inspection.PASSED,
                               operator="wh-1", received_at=datetime.now(UTC))
    doc = orjson.loads(encode(new_envelope(received, key="O1", producer="wms")))
    doc["payload"]["inspection"] = "SMELLS_FUNNY"  # closed: the warehouse cannot act on it
    with pytest.raises(SchemaViolation):
        decode(orjson.dumps(doc))
