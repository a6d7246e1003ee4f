"""The rules of operator accounts: passwords, API tokens' form, the lockout
after wrong passwords, and what a token may do. No I/O, no clock of its own.

An API token reads ``savin_<token id>_<secret>``: the id finds its record,
the secret (32 random bytes, base64url) is kept only as its SHA-256, which is
enough for a secret that long (a slow hash guards guessable passwords). A
token can do what its scope allows, and never more than its owner's role.

Wrong passwords count per account name, whether or not an account has that
name, so the lockout says nothing about which names exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from savin.schemas.consent import Attempts
from savin.schemas.operators import ApiToken, OperatorAccount, Role

__all__ = ["MIN_PASSWORD", "MAX_PASSWORD", "password_problem", "new_token", "parse_token", "token_matches",
           "token_role", "login_key", "login_locked", "after_failed_login", "NAME_RULE", "name_problem",
           "generate_password"]

MIN_PASSWORD = 12
MAX_PASSWORD = 200
NAME_RULE = re.compile(r"^[a-z][a-z0-9._-]{1,39}$")
_TOKEN = re.compile(r"^savin_(T[0-9A-HJKMNP-TV-Z]{10})_([A-Za-z0-9_-]{43})$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def name_problem(name: str) -> str | None:
    if not NAME_RULE.fullmatch(name):
        return "must be 2 to 40 lower-case letters, digits, '.', '_' or '-', starting with a letter"
    return None


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None. Length is what matters (NIST SP 800-63B)."""
    if len(password) < MIN_PASSWORD:
        return f"must be at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"must be at most {MAX_PASSWORD} characters"
    if password.strip() != password or not password.isprintable():
        return "must not start or end with a space or hold control characters"
    return None


def generate_password() -> str:
    """A password for a new account when none is given: 20 characters, about 120 bits."""
    return secrets.token_urlsafe(15)


def new_token() -> tuple[str, str, str]:
    """``(token id, secret, the whole token to hand over)``."""
    token_id = "T" + "".join(secrets.choice(_CROCKFORD) for _ in range(10))
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"savin_{token_id}_{secret}"


def parse_token(text: str) -> tuple[str, str] | None:
    """``(token id, secret)`` of a well-formed token, else None."""
    m = _TOKEN.fullmatch(text.strip())
    return (m.group(1), m.group(2)) if m else None


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_matches(token: ApiToken, secret: str) -> bool:
    return hmac.compare_digest(token.secret_sha256, secret_sha256(secret))


def token_role(token: ApiToken, owner: OperatorAccount | None) -> Role | None:
    """What a presented, matching token may do: the lesser of its scope and its owner's
    role; None when it is revoked or its owner is gone or disabled."""
    if token.revoked_at is not None or owner is None or owner.disabled:
        return None
    return token.scope if owner.role.allows(token.scope) else owner.role


def login_key(name: str) -> str:
    """The attempts key of sign-ins to ``name`` (any text typed as a name; hashed when it
    is not a valid name, so it fits the key's alphabet)."""
    if NAME_RULE.fullmatch(name):
        return f"login:{name}"
    return "login:x-" + hashlib.sha256(name.encode()).hexdigest()[:32]


def login_locked(a: Attempts | None, now: datetime) -> bool:
    return a is not None and a.locked_until is not None and a.locked_until > now


def after_failed_login(a: Attempts | None, key: str, now: datetime, tries: int, lockout: timedelta) -> Attempts:
    """The attempts record after one more wrong password: ``tries`` in a row (within the
    lockout's span) lock the name for ``lockout``, and the count starts again."""
    recent = tuple(t for t in (a.at if a else ()) if now - t < lockout) + (now,)
    if len(recent) >= tries:
        return Attempts(key=key, at=(), locked_until=now + lockout)
    return Attempts(key=key, at=recent, locked_until=a.locked_until if a else None)
