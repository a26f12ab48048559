"""Backward-compatibility check between two JSON Schemas of one message.

Breaking (needs a new schema version and an upcaster): a field removed, a field's type
changed, a new required field. Adding an optional field is not breaking.
"""

from __future__ import annotations

from typing import Any


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _type_of(node: dict[str, Any], defs: dict[str, Any]) -> str:
    node = _resolve(node, defs)
    if "anyOf" in node:
        return "|".join(sorted(_type_of(n, defs) for n in node["anyOf"]))
    if "enum" in node:
        return "enum"
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


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before, after = fields(old), fields(new)
    problems = []
    for path, (old_type, _) in before.items():
        if path not in after:
            problems.append(f"field {path} removed")
        elif after[path][0] != old_type:
            problems.append(f"field {path} changed type {old_type} -> {after[path][0]}")
    for path, (_, required) in after.items():
        if path not in before and required:
            problems.append(f"new required field {path}")
    return problems
