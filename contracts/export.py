"""Writes a JSON Schema per message (the committed snapshots) and an AsyncAPI 3.0 document of
the topic catalogue. Run ``aftersales contracts export`` after changing a contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import CATALOGUE
from .envelope import Envelope, registry


def message_schema(type_name: str) -> dict[str, Any]:
    cls = registry()[type_name]
    schema = Envelope[cls].model_json_schema(mode="validation")  # type: ignore[valid-type]
    schema["title"] = type_name
    schema["x-schema-version"] = cls.schema_version
    return schema


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in CATALOGUE:
        refs = {}
        for msg in topic.messages:
            messages[msg.event_type] = {
                "name": msg.event_type, "title": msg.event_type,
                "summary": (msg.__doc__ or "").strip().splitlines()[0] if msg.__doc__ else "",
                "contentType": "application/json",
                "payload": {"$ref": f"schemas/{msg.event_type}.json"},
                "x-schema-version": msg.schema_version,
            }
            refs[msg.event_type] = {"$ref": f"#/components/messages/{msg.event_type}"}
        channels[topic.name] = {
            "address": topic.name, "description": topic.description, "messages": refs,
            "x-key": topic.key, "x-producers": list(topic.producers), "x-consumers": list(topic.consumers),
            "x-partitions": topic.partitions or "default (AFTERSALES_TOPIC_PARTITIONS, 6)",
        }
        for consumer in topic.consumers:
            operations[f"{consumer}.receive.{topic.name}"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{topic.name}"}}
        for producer in topic.producers:
            operations[f"{producer}.send.{topic.name}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{topic.name}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "After-sales services", "version": "1.0.0",
                 "description": "Topics and messages of the after-sales (售后) services. Every message "
                                "is an envelope keyed by order id; amounts are integer cents."},
        "defaultContentType": "application/json",
        "channels": channels, "operations": operations, "components": {"messages": messages},
    }


def export(out: str | Path) -> int:
    out = Path(out)
    (out / "schemas").mkdir(parents=True, exist_ok=True)
    written = 0
    for type_name in sorted(registry()):
        path = out / "schemas" / f"{type_name}.json"
        path.write_text(json.dumps(message_schema(type_name), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        written += 1
    (out / "asyncapi.json").write_text(json.dumps(asyncapi(), indent=2, ensure_ascii=False) + "\n")
    return written + 1
