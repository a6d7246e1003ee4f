"""Operator accounts, API tokens, ended sessions and the operator audit trail.

* ``<ns>.operators`` (compacted, one partition) holds the console's accounts
  and machines' tokens, read whole by every web process:

  - :class:`OperatorAccount`, keyed ``account:<name>``: a person who signs in,
    with an argon2 hash of their password and a role;
  - :class:`ApiToken`, keyed ``token:<token id>``: a machine's bearer token,
    kept as the SHA-256 of its secret (the secret is shown once, when made);
  - :class:`SessionEnded`, keyed ``session:<session id>``: a signed-out
    session, refused until its cookie would have expired anyway.

* ``<ns>.operator-audit`` (one partition, kept without a time limit) holds an
  :class:`OperatorAction` for every action an operator or a token takes:
  signing in and out, failed sign-ins, replays, approvals, changes to a
  registration or to accounts, and looking at a registration. Who, what,
  when, which ids; never a contact detail or a message's words.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field

from savin.schemas.base import Strict, Timestamp, Uuid

__all__ = ["Role", "OperatorName", "OperatorAccount", "ApiToken", "SessionEnded", "OperatorAction", "TokenId",
           "ACCOUNT_PREFIX", "TOKEN_PREFIX", "SESSION_PREFIX"]

ACCOUNT_PREFIX = "account:"
TOKEN_PREFIX = "token:"
SESSION_PREFIX = "session:"

#: Lower-case letters, digits, dots, dashes and underscores; starts with a letter.
OperatorName = Annotated[str, Field(min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9._-]{1,39}$")]
TokenId = Annotated[str, Field(pattern=r"^T[0-9A-HJKMNP-TV-Z]{10}$")]


class Role(str, enum.Enum):
    """What an operator may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"  # reads every console page and API answer
    OPERATOR = "operator"  # replays dead letters, approves and rejects holds, changes registrations
    ADMIN = "admin"  # manages accounts and tokens

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class OperatorAccount(Strict):
    name: OperatorName
    role: Role
    #: argon2id, in the PHC string format argon2-cffi writes.
    password_hash: Annotated[str, Field(min_length=20, max_length=300)]
    #: Bumped by each password change or disabling: older sessions stop working.
    generation: Annotated[int, Field(ge=0)] = 0
    disabled: bool = False
    created_at: Timestamp
    changed_at: Timestamp
    #: Who made the last change: ``operator:<name>`` or ``cli``.
    changed_by: Annotated[str, Field(min_length=1, max_length=80)]
    kind: Literal["operator-account"] = "operator-account"


class ApiToken(Strict):
    token_id: TokenId
    #: The account the token acts for; it can do no more than that account's role allows.
    owner: OperatorName
    #: What the token may do (at most its owner's role).
    scope: Role
    #: SHA-256 (hex) of the token's secret part.
    secret_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    label: Annotated[str, Field(max_length=80, pattern=r"^[^\x00-\x1f]*$")] = ""
    created_at: Timestamp
    revoked_at: Timestamp | None = None
    kind: Literal["api-token"] = "api-token"


class SessionEnded(Strict):
    session_id: Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    #: The session's cookie expires then; the record may be forgotten after it.
    until: Timestamp
    kind: Literal["session-ended"] = "session-ended"


class OperatorAction(Strict):
    action_id: Uuid
    at: Timestamp
    #: ``operator:<name>``, ``token:<token id>`` (acting for its owner), ``cli`` or, for a
    #: sign-in that failed, ``anonymous``.
    actor: Annotated[str, Field(min_length=1, max_length=80)]
    #: What was done, in a few words: ``login``, ``login-failed``, ``logout``,
    #: ``dead-letters.replay``, ``registration.view``, ``flag.clear``, ``account.add``, ...
    action: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z.-]*$")]
    #: The ids the action touched, by kind: ``{"dead_letter": [...], "registration": [...]}``.
    ids: dict[str, list[str]] = {}
    outcome: Literal["done", "refused", "failed"] = "done"
    #: Why, for a refusal or a failure, or a short note (counts); never personal data.
    detail: Annotated[str, Field(max_length=300)] | None = None
    #: Where the action came from: ``console``, ``api`` or ``cli``.
    via: Literal["console", "api", "cli"] = "console"
    kind: Literal["operator-action"] = "operator-action"
