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
