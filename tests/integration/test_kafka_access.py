"""The broker enforces the catalogue's ACLs: every service signs in as its own principal (SCRAM)
and may write only the topics it produces. The stack the project starts (deploy/local/up.sh)
runs Kafka with SASL and the StandardAuthorizer; `aftersales init` created the users and ACLs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ClusterAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from contracts.topics import DECISIONS, TICKETS
from services.common.kafka_access import principals

pytestmark = pytest.mark.asyncio(loop_scope="session")


def secured(settings: Any) -> None:
    if settings.kafka_security_protocol == "PLAINTEXT":
        pytest.skip("this broker is unsecured (AFTERSALES_KAFKA_SECURITY_PROTOCOL=PLAINTEXT): no ACLs to check")


async def writes(settings: Any, topic: str) -> bool:
    """Whether the settings' principal may write ``topic`` (True), or is refused (False)."""
    producer = AIOKafkaProducer(**settings.kafka_client(), enable_idempotence=True, acks="all",
                                request_timeout_ms=10_000, client_id="acl-probe")
    try:
        await producer.start()  # an idempotent producer asks for its id here: refused to who writes nothing
        await asyncio.wait_for(producer.send_and_wait(topic, b"acl probe: never a valid envelope",
                                                      key=b"acl-probe"), 20)
        return True
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
        return False  # the topic refused, or (a service that writes nothing) no producer id at all
    finally:
        await producer.stop()


async def test_a_worker_may_write_its_own_topics_and_is_refused_on_another(stack: Any) -> None:
    secured(stack)
    intake = stack.as_principal("intake")
    assert await writes(intake, TICKETS.name)
    assert not await writes(intake, "payments.refund-results")
    assert not await writes(intake, DECISIONS.name)


async def test_the_decisions_topic_refuses_every_principal_but_the_back_office(stack: Any) -> None:
    secured(stack)
    allowed = {name: await writes(stack.as_principal(name), DECISIONS.name) for name in principals()}
    assert {name for name, ok in allowed.items() if ok} == {"back-office"}


async def test_a_wrong_password_does_not_sign_in(stack: Any) -> None:
    secured(stack)
    impostor = stack.as_principal("back-office").with_changes(kafka_password="not-the-password")
    with pytest.raises(KafkaConnectionError):
        await writes(impostor, DECISIONS.name)
