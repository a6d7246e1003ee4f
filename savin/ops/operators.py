"""Operator accounts and API tokens: the records ``savin operators`` and the
console's admin pages write to ``operators``, and the operator-audit records
every action leaves. The web process keeps both topics in its views
(:mod:`savin.web.console.accounts`); the CLI reads the topic whole.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from savin.domain.operators import new_token, secret_sha256
from savin.ops.reading import read_topic
from savin.schemas.operators import (
    ACCOUNT_PREFIX,
    SESSION_PREFIX,
    TOKEN_PREFIX,
    ApiToken,
    OperatorAccount,
    OperatorAction,
    Role,
    SessionEnded,
)
from savin.sealing import hash_password
from savin.settings import Settings
from savin.topics import Topics, ensure_topics, producer

__all__ = ["Roster", "read_roster", "account_record", "new_account", "changed_account", "issue_token",
           "revoked_token", "action", "write_records", "parse_operator_record", "audit_trail", "record_of",
           "session_record"]

OperatorRecord = OperatorAccount | ApiToken | SessionEnded


def parse_operator_record(key: bytes, value: bytes | None) -> tuple[str, OperatorRecord | None]:
    """``(key, record)`` of one record on ``operators`` (None: a tombstone); ValueError when unreadable."""
    text = key.decode()
    if value is None:
        return text, None
    model = {ACCOUNT_PREFIX: OperatorAccount, TOKEN_PREFIX: ApiToken, SESSION_PREFIX: SessionEnded}.get(
        text[:text.find(":") + 1])
    if model is None:
        raise ValueError(f"unknown operators key {text[:20]!r}")
    return text, model.model_validate_json(value)


def account_record(a: OperatorAccount) -> tuple[bytes, bytes]:
    return f"{ACCOUNT_PREFIX}{a.name}".encode(), a.model_dump_json().encode()


def token_record(t: ApiToken) -> tuple[bytes, bytes]:
    return f"{TOKEN_PREFIX}{t.token_id}".encode(), t.model_dump_json().encode()


def session_record(s: SessionEnded) -> tuple[bytes, bytes]:
    return f"{SESSION_PREFIX}{s.session_id}".encode(), s.model_dump_json().encode()


def new_account(name: str, role: Role, password: str, now: datetime, by: str) -> OperatorAccount:
    return OperatorAccount(name=name, role=role, password_hash=hash_password(password), created_at=now,
                           changed_at=now, changed_by=by)


def changed_account(a: OperatorAccount, now: datetime, by: str, *, role: Role | None = None,
                    password: str | None = None, disabled: bool | None = None) -> OperatorAccount:
    """The account after a change; a new password or disabling ends its sessions (generation + 1)."""
    update: dict = {"changed_at": now, "changed_by": by}
    if role is not None:
        update["role"] = role
    if password is not None:
        update["password_hash"] = hash_password(password)
    if disabled is not None:
        update["disabled"] = disabled
    if password is not None or disabled:
        update["generation"] = a.generation + 1
    return a.model_copy(update=update)


def issue_token(owner: str, scope: Role, now: datetime, label: str = "") -> tuple[ApiToken, str]:
    """A new token record and the whole token (shown once)."""
    token_id, secret, whole = new_token()
    return ApiToken(token_id=token_id, owner=owner, scope=scope, secret_sha256=secret_sha256(secret),
                    label=label, created_at=now), whole


def revoked_token(t: ApiToken, now: datetime) -> ApiToken:
    return t if t.revoked_at is not None else t.model_copy(update={"revoked_at": now})


def action(actor: str, what: str, now: datetime, ids: dict[str, list[str]] | None = None, *,
           outcome: str = "done", detail: str | None = None, via: str = "console") -> OperatorAction:
    return OperatorAction(action_id=uuid.uuid4(), at=now, actor=actor, action=what, ids=ids or {},
                          outcome=outcome, detail=detail, via=via)


def record_of(r: OperatorRecord | OperatorAction) -> tuple[str, bytes, bytes]:
    """``(topic attribute, key, value)`` of a record to write."""
    if isinstance(r, OperatorAction):
        return "operator_audit", r.actor.encode(), r.model_dump_json().encode()
    key, value = {OperatorAccount: account_record, ApiToken: token_record, SessionEnded: session_record}[type(r)](r)
    return "operators", key, value


async def write_records(settings: Settings, records: list[OperatorRecord | OperatorAction]) -> None:
    """Write records straight to Kafka, in order, each acknowledged by all in-sync replicas."""
    topics = Topics(settings)
    await ensure_topics(settings.kafka_bootstrap, topics.specs(), settings.replication_factor)
    p = producer(settings.kafka_bootstrap, client_id="savin-operators")
    await p.start()
    try:
        for r in records:
            attr, key, value = record_of(r)
            await (await p.send(getattr(topics, attr), value, key=key, partition=0))
    finally:
        await p.stop()


@dataclass
class Roster:
    accounts: dict[str, OperatorAccount] = field(default_factory=dict)
    tokens: dict[str, ApiToken] = field(default_factory=dict)
    unreadable: int = 0


async def read_roster(settings: Settings) -> Roster:
    """Every account and token on ``operators`` (the latest record of each)."""
    roster = Roster()
    async for r in read_topic(settings.kafka_bootstrap, Topics(settings).operators):
        try:
            key, rec = parse_operator_record(r.key or b"", r.value)
        except (ValueError, ValidationError, UnicodeDecodeError):
            roster.unreadable += 1
            continue
        kind, _, name = key.partition(":")
        target = {"account": roster.accounts, "token": roster.tokens}.get(kind)
        if target is None:
            continue  # an ended session
        if rec is None:
            target.pop(name, None)
        else:
            target[name] = rec
    return roster


async def audit_trail(settings: Settings) -> list[OperatorAction]:
    out = []
    async for r in read_topic(settings.kafka_bootstrap, Topics(settings).operator_audit):
        try:
            out.append(OperatorAction.model_validate_json(r.value or b""))
        except ValidationError:
            continue
    return out
