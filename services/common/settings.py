"""All configuration, from the environment (prefix ``AFTERSALES_``; the three service URLs by
their conventional names). Nothing else in the code reads the environment."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.domain.policy import Policy

SERVICE_SASL_MECHANISM = "SCRAM-SHA-512"  # how every service signs in (the broker's admin may use PLAIN)


def read_kafka_passwords(path: str) -> dict[str, str]:
    """The services' passwords from the credentials file ``aftersales kafka access`` keeps; none
    when there is no such file (yet)."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            passwords = json.load(file)
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in passwords.items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AFTERSALES_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "AFTERSALES_KAFKA_BOOTSTRAP_SERVERS"))
    database_url: str = Field(
        "postgresql+asyncpg://aftersales:aftersales@127.0.0.1:5432/aftersales",
        validation_alias=AliasChoices("DATABASE_URL", "AFTERSALES_DATABASE_URL"))
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "AFTERSALES_REDIS_URL"))

    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT"] = Field(
        "SASL_PLAINTEXT", description="Secure by default; PLAINTEXT only for a user's own unsecured broker "
                                      "(no authentication, no ACLs)")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="Services use SCRAM; PLAIN is the local broker's admin (tools)")
    kafka_username: str = Field("", description="This process's Kafka principal (each service its own)")
    kafka_password: str = Field("", description="Its SCRAM password (or taken from kafka_credentials_file)")
    kafka_credentials_file: str = Field(
        "", description="JSON {principal: password} of every service (written by `aftersales kafka access`; "
                        "processes started by the demo, tests and chaos run take their own from it)")
    kafka_ssl_cafile: str = Field("", description="SASL_SSL: the CA that signed the brokers' certificates")
    kafka_ssl_certfile: str = Field("", description="SASL_SSL: a client certificate, if the brokers ask for one")
    kafka_ssl_keyfile: str = ""
    topic_partitions: int = 6
    consumer_group_prefix: str = "aftersales"
    retry_backoff_seconds: float = Field(0.2, description="First pause while infrastructure fails")
    retry_backoff_max_seconds: float = Field(5.0, description="Longest pause between infrastructure retries")
    outage_alert_after_seconds: float = Field(
        30.0, description="A message waiting out an outage this long raises an INFRASTRUCTURE_OUTAGE alert")
    conflict_attempts: int = Field(3, description="Tries of a message that keeps hitting a unique-key conflict")
    shutdown_grace_seconds: float = Field(5.0, description="How long shutdown waits for a running handler")
    kafka_session_timeout_ms: int = 10_000
    kafka_linger_ms: int = Field(
        0, description="How long a producer waits to fill a batch. The outbox relay sends a transaction's "
                       "rows in one go, which batches them anyway: waiting only delays each hop (measured "
                       "2026-12-06, after the hand-over: bursts +25 % tickets/s and -15 % worker CPU, one at "
                       "a time -20 % against 2 ms)")
    commit_timeout_seconds: float = Field(10.0, description="An offset commit taking longer is retried later")
    dead_letter_summary_seconds: float = Field(60.0, description="How often dead-letter counts go to ops")
    batch_max_records: int = Field(
        100, description="Messages fetched and applied in one PostgreSQL transaction (one savepoint each)")
    commit_every_messages: int = Field(
        50, description="Offsets are committed after this many applied messages or commit_every_seconds")
    commit_every_seconds: float = 0.2
    gather_wait_ms: int = Field(
        100, ge=0, description="How long the fetch of a worker nobody waits on in the moment (figures, buyer "
                               "messages, statements, warehouse orders) waits to gather a batch; 0: every "
                               "worker fetches what is there at once. Each fetch, transaction and relay round "
                               "has a fixed cost: gathered, those workers stop competing for the cores with "
                               "the ones a buyer waits on at every event (measured 2026-12-06, all workers on "
                               "2 cores: one ticket at a time 144 -> 97-106 ms p50)")
    outbox_batch: int = 500
    outbox_poll_seconds: float = 0.5
    scheduler_tick_seconds: float = 1.0
    scheduler_shops: list[str] = Field(
        default_factory=list,
        description="Shops whose deadlines and unpaid orders this scheduler serves; empty: every shop "
                    "(an operator draining one shop's backlog; a test ticking only its own rows)")
    parked_event_wait_seconds: float = 600.0
    parked_request_wait_seconds: float = Field(
        30.0, description="How long a request waits for lagging order facts before it is refused")
    refund_retry_base_seconds: float = 2.0
    refund_max_attempts: int = 5
    erp_retry_base_seconds: float = 2.0
    erp_max_attempts: int = 5
    db_pool_size: int = 10
    sim_wms_mismatch_rate: float = 0.0
    payment_signing_keys: str = Field(
        "{}", description='JSON {"key id": "secret"}: the payment channel keys finance accepts results '
                          "signed by (none: every result is refused); add a key before the channel uses it")
    payment_signing_key_id: str = Field(
        "", description="The key the payment-channel simulator signs with (one of payment_signing_keys)")
    backoffice_host: str = Field("127.0.0.1", description="Where the back office listens")
    backoffice_port: int = Field(8080, ge=1, le=65535)
    backoffice_cookie_secure: bool = Field(
        True, description="Session cookie only over HTTPS (browsers also send it to http://localhost)")
    reporting_timezone: str = Field(
        "Asia/Shanghai", description="Monitoring counts each figure on the day it happened in this zone")
    work_item_ack_minutes: dict[str, float] = Field(
        default_factory=lambda: {"CRITICAL": 15.0, "WARNING": 240.0, "INFO": 1440.0},
        description="How soon a work item of each severity must be acknowledged before it escalates")
    monitoring_tick_seconds: float = Field(
        5.0, description="How often monitoring escalates overdue work items and publishes changed figures")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve /metrics, /healthz and /readyz on this port (unset: off)")
    metrics_host: str = Field("127.0.0.1", description="Where the metrics server listens (0.0.0.0 in a container)")
    metrics_outbox_seconds: float = Field(5.0, gt=0, description="How often /metrics reads the outbox backlog")
    otlp_endpoint: str | None = Field(
        None, description="Export traces over OTLP/HTTP here (e.g. http://collector:4318/v1/traces); unset: none")
    log_level: str = "INFO"
    log_json: bool = True

    policy: str = Field("{}", description="JSON overrides of the default policy for every shop")
    shop_policies: str = Field("{}", description='JSON {"shop_id": {overrides}}')
    return_addresses: str = Field(
        "{}", description='JSON {"shop_id" or "*": {"recipient", "phone", "address", "instructions"}}: where '
                          'buyers send goods back when ops approve without giving one ("*": every other shop)')

    @model_validator(mode="after")
    def _policies_are_valid(self) -> Settings:
        """Every shop's policy is built now: a wrong key or type stops the worker at start."""
        self.policy_for("")
        for shop in self.shops_with_overrides():
            self.policy_for(shop)
        _ = self._return_addresses
        _ = self.payment_keys
        return self

    @cached_property
    def _default_policy(self) -> Policy:
        return Policy().with_overrides(_json_object(self.policy, "AFTERSALES_POLICY"))

    @cached_property
    def _shop_overrides(self) -> dict[str, dict[str, Any]]:
        return _json_object(self.shop_policies, "AFTERSALES_SHOP_POLICIES")

    def policy_for(self, shop_id: str) -> Policy:
        overrides = self._shop_overrides.get(shop_id)
        return self._default_policy.with_overrides(overrides) if overrides else self._default_policy

    @cached_property
    def _return_addresses(self) -> dict[str, dict[str, str]]:
        found = _json_object(self.return_addresses, "AFTERSALES_RETURN_ADDRESSES")
        for shop, address in found.items():
            if not isinstance(address, dict) or not all(
                    isinstance(address.get(key), str) and address[key] for key in ("recipient", "phone", "address")):
                raise ValueError(f"AFTERSALES_RETURN_ADDRESSES[{shop!r}] needs recipient, phone and address")
        return found

    def return_address_for(self, shop_id: str) -> dict[str, str] | None:
        """The shop's return desk, or the one for every shop ("*"), or None."""
        found = self._return_addresses.get(shop_id) or self._return_addresses.get("*")
        return None if found is None else {key: str(found.get(key, "")) for key in
                                           ("recipient", "phone", "address", "instructions")}

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some settings changed (policy caches are rebuilt, unlike ``model_copy``)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    @cached_property
    def payment_keys(self) -> dict[str, str]:
        keys = _json_object(self.payment_signing_keys, "AFTERSALES_PAYMENT_SIGNING_KEYS")
        if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in keys.items()):
            raise ValueError("AFTERSALES_PAYMENT_SIGNING_KEYS maps each key id to a non-empty secret")
        return keys

    def kafka_client(self) -> dict[str, Any]:
        """aiokafka's connection options for this process's principal (every client uses these)."""
        options: dict[str, Any] = {"bootstrap_servers": self.kafka_bootstrap_servers,
                                   "security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol == "PLAINTEXT":
            return options
        password = self.kafka_password or self.kafka_passwords().get(self.kafka_username, "")
        if not self.kafka_username or not password:
            raise ValueError("Kafka is secured (AFTERSALES_KAFKA_SECURITY_PROTOCOL): set AFTERSALES_KAFKA_USERNAME "
                             "and AFTERSALES_KAFKA_PASSWORD, or PLAINTEXT for an unsecured broker")
        options.update(sasl_mechanism=self.kafka_sasl_mechanism, sasl_plain_username=self.kafka_username,
                       sasl_plain_password=password)
        if self.kafka_security_protocol == "SASL_SSL":
            options["ssl_context"] = self.kafka_ssl_context()
        return options

    def kafka_ssl_context(self) -> Any:
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(cafile=self.kafka_ssl_cafile or None, certfile=self.kafka_ssl_certfile or None,
                                  keyfile=self.kafka_ssl_keyfile or None)

    def faststream_security(self) -> Any:
        """The same principal for FastStream's broker (its consumer and producer)."""
        from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

        if self.kafka_security_protocol == "PLAINTEXT":
            return None
        options = self.kafka_client()
        ssl = options.get("ssl_context")
        kind = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}
        security: BaseSecurity = kind[self.kafka_sasl_mechanism](
            self.kafka_username, options["sasl_plain_password"], ssl_context=ssl, use_ssl=ssl is not None)
        return security

    def as_principal(self, principal: str) -> Settings:
        """These settings as another service of the catalogue, from the credentials file (tools that
        start worker processes, and tests checking what a principal may do)."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return self
        return self.with_changes(kafka_username=principal, kafka_password=self.kafka_passwords()[principal],
                                 kafka_sasl_mechanism=SERVICE_SASL_MECHANISM)

    def kafka_passwords(self) -> dict[str, str]:
        return read_kafka_passwords(self.kafka_credentials_file)

    def shops_with_overrides(self) -> list[str]:
        return list(self._shop_overrides)

    def group(self, worker: str) -> str:
        return f"{self.consumer_group_prefix}.{worker}"


def _json_object(text: str, name: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object")
    if name == "AFTERSALES_SHOP_POLICIES" and not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(f"{name} must map each shop id to a JSON object of settings")
    return value
