"""Failures are classified once: outages wait, the message's own faults dead-letter at once."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from services.common.failures import ConcurrentUpdate, Failure, classify, describe, safe_traceback


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("secret parameter 13800001111")
        self.sqlstate = sqlstate


def _db_error(kind: type, sqlstate: str) -> Exception:
    return kind("INSERT INTO t VALUES ($1)", {"v": "13800001111"}, _Orig(sqlstate))  # type: ignore[no-any-return]


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError(), ConnectionResetError(), TimeoutError(), OSError("no route"),
    KafkaConnectionError(), KafkaTimeoutError(), CommitFailedError("rebalanced"), RedisConnectionError(),
    ConcurrentUpdate(), _db_error(OperationalError, "57P01"), _db_error(DataError, "40001"),
    _db_error(DataError, "40P01"), _db_error(OperationalError, "08006"), _db_error(DataError, "53300"),
    asyncpg.exceptions.CannotConnectNowError(), asyncpg.exceptions.ConnectionDoesNotExistError(),
])
def test_outages_and_contention_are_infrastructure(exc: Exception) -> None:
    assert classify(exc) is Failure.INFRASTRUCTURE


@pytest.mark.parametrize("exc", [
    AssertionError(), ValueError(), KeyError("x"), TypeError(), _db_error(DataError, "22021"),
    _db_error(DataError, "22P02"), _db_error(IntegrityError, "23503"),
])
def test_faults_of_the_message_are_dead_lettered(exc: Exception) -> None:
    assert classify(exc) is Failure.MESSAGE


def test_a_unique_key_taken_concurrently_is_a_conflict() -> None:
    assert classify(_db_error(IntegrityError, "23505")) is Failure.CONFLICT


def test_descriptions_carry_the_class_and_sqlstate_never_the_text() -> None:
    exc = _db_error(DataError, "22021")
    assert describe(exc) == "DataError(_Orig) sqlstate=22021"
    try:
        raise exc
    except DataError as raised:
        where = safe_traceback(raised)
    assert "13800001111" not in where
    assert "test_failures.py" in where
