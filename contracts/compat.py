"""Backward-compatibility check between two JSON Schemas of one message.

Breaking (needs a new schema version and an upcaster): a field removed, a field's type
changed, a new required field, an enum member removed, a member added to a closed enum (a
consumer that does not know it refuses the message), an open enum closed. Not breaking: a new
optional field, a member added to an open enum (``x-open-enum``: consumers pass over members
they do not know), a closed enum opened with the same members.
"""

from __future__ import annotations

import re
from typing import Any

_ENUM = re.compile(r"(open-enum|enum)\{([^}]*)\}")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _type_of(node: dict[str, Any], defs: dict[str, Any]) -> str:
    opened = node.get("x-open-enum", False)
    node = _resolve(node, defs)
    if opened:
        members = [m for option in node["anyOf"] for m in _resolve(option, defs).get("enum", [])]
        return f"open-enum{{{','.join(sorted(members))}}}"
    if "anyOf" in node:
        return "|".join(sorted(_type_of(n, defs) for n in node["anyOf"]))
    if "enum" in node:
        return f"enum{{{','.join(sorted(map(str, node['enum'])))}}}"
    if node.get("type") == "array":
        return f"array<{_type_of(node.get('items', {}), defs)}>"
    if "properties" in node:
        return "object"
    return str(node.get("type", node.get("format", "any")))


def fields(schema: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Every field path → (type signature, required), following nested models and lists."""
    defs = schema.get("$defs", {})
    out: dict[str, tuple[str, bool]] = {}

    def walk(node: dict[str, Any], prefix: str, seen: frozenset[str]) -> None:
        node = _resolve(node, defs)
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            path = f"{prefix}{name}"
            out[path] = (_type_of(prop, defs), name in required)
            for child in _children(prop):
                ref = child.get("$ref", "")
                if ref and ref in seen:
                    continue
                walk(child, f"{path}.", seen | {ref})

    def _children(prop: dict[str, Any]) -> list[dict[str, Any]]:
        kids = []
        for option in prop.get("anyOf", [prop]):
            target = option.get("items", option) if option.get("type") == "array" else option
            if "$ref" in target or "properties" in target:
                kids.append(target)
        return kids

    walk(schema, "", frozenset())
    return out


def _enum_problems(path: str, old_type: str, new_type: str) -> list[str] | None:
    """What changed in the enums of one field; None if more than enum members differ."""
    if _ENUM.sub("ENUM", old_type) != _ENUM.sub("ENUM", new_type):
        return None
    problems = []
    for (old_kind, old_members), (new_kind, new_members) in zip(
            _ENUM.findall(old_type), _ENUM.findall(new_type), strict=True):
        before, after = set(filter(None, old_members.split(","))), set(filter(None, new_members.split(",")))
        problems += [f"field {path}: enum member {m} removed" for m in sorted(before - after)]
        if old_kind == "open-enum" and new_kind == "enum":
            problems.append(f"field {path}: open enum closed")
        elif new_kind == "enum":
            problems += [f"field {path}: member {m} added to a closed enum" for m in sorted(after - before)]
    return problems


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before, after = fields(old), fields(new)
    problems = []
    for path, (old_type, _) in before.items():
        if path not in after:
            problems.append(f"field {path} removed")
        elif after[path][0] != old_type:
            enum_problems = _enum_problems(path, old_type, after[path][0])
            if enum_problems is None:
                problems.append(f"field {path} changed type {old_type} -> {after[path][0]}")
            else:
                problems += enum_problems
    for path, (_, required) in after.items():
        parent = path.rpartition(".")[0]
        # a required field inside a new object is new only with it: the object's own requiredness counts
        if path not in before and required and (not parent or parent in before):
            problems.append(f"new required field {path}")
    return problems
