"""Who may touch which topic, generated from the topic catalogue, and applied to the broker.

Each service authenticates as its own principal (SCRAM); the broker's StandardAuthorizer allows
only what the catalogue gives it: WRITE on the topics it produces, READ on the topics it
consumes and on its consumer groups (``<prefix>.<service>…``). Nothing else: only the back office
writes ``aftersales.decisions``, only the payment channel writes ``payments.refund-results``. The
broker's own ``admin`` is the one super user (topic creation, this module, operators' tools).

Why confluent-kafka here: aiokafka has no admin API for ACLs or SCRAM users; librdkafka's has
both, and this module is the only user of it (workers keep aiokafka and FastStream).
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import CATALOGUE

from .settings import Settings

SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW rule: ``principal`` may ``operation`` on a topic or group (exact name or prefix)."""

    principal: str
    operation: str  # READ | WRITE | DESCRIBE
    resource: str  # TOPIC | GROUP
    name: str
    prefixed: bool = False


def principals() -> list[str]:
    """Every system the catalogue names as a producer or consumer: each gets its own credentials."""
    return sorted({name for topic in CATALOGUE for name in (*topic.producers, *topic.consumers)})


def plan(group_prefix: str) -> set[Grant]:
    grants: set[Grant] = set()
    for topic in CATALOGUE:
        for producer in topic.producers:
            grants |= {Grant(producer, "WRITE", "TOPIC", topic.name), Grant(producer, "DESCRIBE", "TOPIC", topic.name)}
        for consumer in topic.consumers:
            grants |= {Grant(consumer, "READ", "TOPIC", topic.name), Grant(consumer, "DESCRIBE", "TOPIC", topic.name),
                       Grant(consumer, "READ", "GROUP", f"{group_prefix}.{consumer}", prefixed=True)}
    return grants


def may_write(principal: str, topic: str, group_prefix: str = "aftersales") -> bool:
    return Grant(principal, "WRITE", "TOPIC", topic) in plan(group_prefix)


def credentials(path: Path) -> dict[str, str]:
    """The services' passwords, made once (random) and kept in ``path`` (mode 0600); a service the
    catalogue gains later gets a new one, the others keep theirs."""
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in principals() if name not in known]
    if missing or not path.exists():
        known.update({name: secrets.token_urlsafe(24) for name in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(known, file, indent=1, sort_keys=True)
    return known


def _admin(settings: Settings) -> Any:
    from confluent_kafka.admin import AdminClient

    options = settings.kafka_client()
    conf = {"bootstrap.servers": options["bootstrap_servers"], "security.protocol": options["security_protocol"],
            "sasl.mechanism": options["sasl_mechanism"], "sasl.username": options["sasl_plain_username"],
            "sasl.password": options["sasl_plain_password"]}
    if settings.kafka_security_protocol == "SASL_SSL":
        conf.update({key: value for key, value in {
            "ssl.ca.location": settings.kafka_ssl_cafile, "ssl.certificate.location": settings.kafka_ssl_certfile,
            "ssl.key.location": settings.kafka_ssl_keyfile}.items() if value})
    return AdminClient(conf)


def apply(settings: Settings) -> dict[str, int]:
    """Makes the broker match the catalogue, idempotently: every principal's SCRAM credential (from
    the credentials file), the planned ACLs created, ACLs of these principals not in the plan
    removed. Run as the broker's admin (``aftersales init`` / ``aftersales kafka access``)."""
    kafka_admin: Any = importlib.import_module("confluent_kafka.admin")  # typed loosely: None means "any"
    AclBinding, AclBindingFilter = kafka_admin.AclBinding, kafka_admin.AclBindingFilter
    AclOperation, AclPermissionType = kafka_admin.AclOperation, kafka_admin.AclPermissionType
    ResourcePatternType, ResourceType = kafka_admin.ResourcePatternType, kafka_admin.ResourceType
    ScramMechanism, ScramCredentialInfo = kafka_admin.ScramMechanism, kafka_admin.ScramCredentialInfo
    UserScramCredentialUpsertion = kafka_admin.UserScramCredentialUpsertion

    if not settings.kafka_credentials_file:
        raise ValueError("AFTERSALES_KAFKA_CREDENTIALS_FILE names where the services' passwords are kept")
    passwords = credentials(Path(settings.kafka_credentials_file))
    admin = _admin(settings)
    mechanism = ScramMechanism.SCRAM_SHA_512  # what services sign in with (the admin may use PLAIN)
    upserts = [UserScramCredentialUpsertion(name, ScramCredentialInfo(mechanism, SCRAM_ITERATIONS),
                                            passwords[name].encode())
               for name in principals()]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(timeout=30)

    def binding(grant: Grant) -> Any:
        return AclBinding(ResourceType[grant.resource], grant.name,
                          ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
                          f"User:{grant.principal}", "*", AclOperation[grant.operation], AclPermissionType.ALLOW)

    wanted = {binding(g): g for g in plan(settings.consumer_group_prefix)}
    existing = admin.describe_acls(AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY,
    )).result(timeout=30)
    ours = {f"User:{name}" for name in principals()}
    stale = [b for b in existing if b.principal in ours and b not in wanted]
    missing = [b for b in wanted if b not in set(existing)]
    if missing:
        for future in admin.create_acls(missing).values():
            future.result(timeout=30)
    if stale:
        filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                    b.permission_type) for b in stale]
        for future in admin.delete_acls(filters).values():
            future.result(timeout=30)
    return {"principals": len(upserts), "acls": len(wanted), "created": len(missing), "removed": len(stale)}
