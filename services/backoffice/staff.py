"""Who may do what in the back office: roles, shops, passwords and session tokens.

Why argon2id: a stolen users table must not give up passwords (argon2-cffi, the reference
implementation's binding, with its default cost). Why opaque tokens stored as SHA-256: a session
is revoked by deleting its row, expires by its row's ``expires_at``, and a leaked sessions table
cannot be replayed (the token itself is only ever in the user's browser or client).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contracts import decisions as d
from contracts.aftersales import Role


class StaffRole(StrEnum):
    OPS = "ops"
    FINANCE = "finance"
    MANAGER = "manager"
    WAREHOUSE = "warehouse"
    ADMIN = "admin"


@dataclass(frozen=True)
class Staff:
    """The signed-in person; the actor of every decision the back office publishes for them."""

    user_id: str
    username: str
    role: StaffRole
    shops: frozenset[str]

    def sees(self, shop_id: str) -> bool:
        return shop_id in self.shops


# which role may submit which decision (the review worker's state machine checks the same roles
# again; this check is what keeps a wrong role from publishing anything at all)
DECISION_ROLES: dict[type[d.Decision], frozenset[StaffRole]] = {
    d.ApproveTicket: frozenset({StaffRole.OPS}),
    d.RejectTicket: frozenset({StaffRole.OPS, StaffRole.MANAGER}),
    d.AdjustRefundAmount: frozenset({StaffRole.OPS}),
    d.SetRefundFlags: frozenset({StaffRole.OPS}),
    d.ResolveIntervention: frozenset({StaffRole.OPS}),
    d.ReissueMissingUnits: frozenset({StaffRole.OPS}),
    d.ApproveRefund: frozenset({StaffRole.FINANCE}),
    d.SendBackRefund: frozenset({StaffRole.FINANCE}),
    d.RetryRefund: frozenset({StaffRole.FINANCE}),
    d.ApproveLargeRefund: frozenset({StaffRole.MANAGER}),
}

ACTOR_ROLE = {StaffRole.OPS: Role.OPS, StaffRole.FINANCE: Role.FINANCE, StaffRole.MANAGER: Role.MANAGER,
              StaffRole.WAREHOUSE: Role.WAREHOUSE}

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# verified against when the username is unknown, so a wrong name takes as long as a wrong password
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))


def spend_a_verification(password: str) -> None:
    password_matches(_UNKNOWN_USER_HASH, password)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
