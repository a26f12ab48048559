"""Signed answers from the payment channel, as real channels sign their notifications.

The channel signs each result with HMAC-SHA256 under a key it names by ``key_id``; the receiver
holds the keys by id, so a key is rotated by adding the new one, switching the channel to it, and
removing the old one once no result signed with it can still arrive. What is signed: the
payload's fields as its contract defines them, without ``signature``, as JSON with sorted keys
and no spaces (both sides build it from the same model, so field order and number formats agree).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Protocol, TypeVar

import orjson

from .envelope import Contract


class Signed(Protocol):
    key_id: str
    signature: str


S = TypeVar("S", bound=Contract)


def signing_input(payload: Contract) -> bytes:
    return orjson.dumps(payload.model_dump(mode="json", exclude={"signature"}), option=orjson.OPT_SORT_KEYS)


def _mac(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def signed(payload: S, key_id: str, secret: str) -> S:
    """The payload with ``key_id`` set and its signature."""
    keyed = payload.model_copy(update={"key_id": key_id, "signature": ""})
    return keyed.model_copy(update={"signature": _mac(secret, signing_input(keyed))})


def signature_valid(payload: Contract, keys: Mapping[str, str]) -> bool:
    """Whether the payload is signed by a key we hold; an unsigned payload or unknown key is not."""
    key_id = getattr(payload, "key_id", "")
    signature = getattr(payload, "signature", "")
    secret = keys.get(key_id)
    if not key_id or not signature or secret is None:
        return False
    return hmac.compare_digest(_mac(secret, signing_input(payload)), signature)
