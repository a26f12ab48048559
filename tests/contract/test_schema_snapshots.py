"""Committed JSON Schema snapshots catch breaking changes unless the schema version is raised."""

import json
from pathlib import Path

import pytest

from contracts.compat import breaking_changes
from contracts.envelope import registry
from contracts.export import message_schema

SNAPSHOTS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"


@pytest.mark.parametrize("type_name", sorted(registry()))
def test_no_breaking_change_without_a_new_schema_version(type_name):
    path = SNAPSHOTS / f"{type_name}.json"
    assert path.exists(), f"{type_name} has no snapshot: run `aftersales contracts export`"
    old = json.loads(path.read_text())
    new = message_schema(type_name)
    problems = breaking_changes(old, new)
    if new["x-schema-version"] == old["x-schema-version"]:
        assert not problems, f"{type_name}: breaking change without a version bump: {problems}"
    assert new == old, f"{type_name}: snapshot out of date: run `aftersales contracts export`"


OLD = {"type": "object", "required": ["a"], "properties": {
    "a": {"type": "integer"}, "b": {"type": "string"}, "m": {"$ref": "#/$defs/M"}},
    "$defs": {"M": {"type": "object", "required": ["cents"], "properties": {"cents": {"type": "integer"}}}}}


def _with(**props):
    new = json.loads(json.dumps(OLD))
    new["properties"].update(props)
    return new


def test_removing_a_field_is_breaking():
    new = json.loads(json.dumps(OLD))
    del new["properties"]["b"]
    assert breaking_changes(OLD, new) == ["field b removed"]


def test_retyping_a_nested_field_is_breaking():
    new = json.loads(json.dumps(OLD))
    new["$defs"]["M"]["properties"]["cents"] = {"type": "number"}
    assert breaking_changes(OLD, new) == ["field m.cents changed type integer -> number"]


def test_a_new_required_field_is_breaking_and_an_optional_one_is_not():
    optional = _with(c={"type": "string"})
    assert breaking_changes(OLD, optional) == []
    required = dict(optional, required=["a", "c"])
    assert breaking_changes(OLD, required) == ["new required field c"]



def test_a_new_optional_object_may_have_required_fields_but_a_new_one_in_an_old_object_breaks():
    desk = {"type": "object", "required": ["street"], "properties": {"street": {"type": "string"}}}
    optional = _with(d={"anyOf": [desk, {"type": "null"}]})
    assert breaking_changes(OLD, optional) == []
    required = dict(optional, required=["a", "d"])
    assert breaking_changes(OLD, required) == ["new required field d"]
    grown = json.loads(json.dumps(OLD))
    grown["$defs"]["M"]["properties"]["currency"] = {"type": "string"}
    grown["$defs"]["M"]["required"] = ["cents", "currency"]
    assert breaking_changes(OLD, grown) == ["new required field m.currency"]


ENUMS = {"type": "object", "required": ["closed", "open"], "properties": {
    "closed": {"$ref": "#/$defs/Kind"},
    "open": {"anyOf": [{"$ref": "#/$defs/Status"}, {"type": "string"}], "x-open-enum": True}},
    "$defs": {"Kind": {"enum": ["A", "B"], "type": "string"}, "Status": {"enum": ["X", "Y"], "type": "string"}}}


def _enums(kind=("A", "B"), status=("X", "Y"), open_status=True, closed_is_open=False):
    new = json.loads(json.dumps(ENUMS))
    new["$defs"]["Kind"]["enum"], new["$defs"]["Status"]["enum"] = list(kind), list(status)
    if not open_status:
        new["properties"]["open"] = {"$ref": "#/$defs/Status"}
    if closed_is_open:
        new["properties"]["closed"] = {"anyOf": [{"$ref": "#/$defs/Kind"}, {"type": "string"}], "x-open-enum": True}
    return new


def test_removing_an_enum_member_is_breaking_open_or_closed():
    assert breaking_changes(ENUMS, _enums(kind=("A",))) == ["field closed: enum member B removed"]
    assert breaking_changes(ENUMS, _enums(status=("X",))) == ["field open: enum member Y removed"]


def test_a_member_added_to_a_closed_enum_is_breaking_and_to_an_open_one_is_not():
    assert breaking_changes(ENUMS, _enums(kind=("A", "B", "C"))) == ["field closed: member C added to a closed enum"]
    assert breaking_changes(ENUMS, _enums(status=("X", "Y", "Z"))) == []


def test_opening_a_closed_enum_is_not_breaking_and_closing_an_open_one_is():
    assert breaking_changes(ENUMS, _enums(closed_is_open=True)) == []
    assert breaking_changes(ENUMS, _enums(open_status=False)) == ["field open: open enum closed"]


@pytest.mark.parametrize("type_name", sorted(registry()))
def test_every_committed_schema_names_its_enum_members(type_name):
    """The snapshots themselves: an enum compares by its members, never as a bare 'enum'."""
    from contracts.compat import fields

    for path, (signature, _) in fields(json.loads((SNAPSHOTS / f"{type_name}.json").read_text())).items():
        assert "enum" not in signature or "{" in signature, path
