"""Proving a contact and guarding the portal: codes, their checks, and the
limits on codes sent and PINs tried. Pure functions over the records on
``verifications`` and ``attempts``; the web process does the I/O.

A 6-digit code has a million values, so no hash makes a leaked one safe to
keep: codes are stored as an HMAC-SHA256 under a key derived from
``SAVIN_WEB_SECRET``, bound to their contact slot and address, and they die
after ten minutes or five wrong tries.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from savin.schemas.consent import Attempts, Verification
from savin.schemas.registration import Channel

__all__ = [
    "CODE_SENDS",
    "CODE_TRIES",
    "CODE_TTL",
    "LINK_TTL",
    "PIN_LOCKOUT",
    "PIN_TRIES",
    "CodeCheck",
    "Limit",
    "check_code",
    "code_hash",
    "code_sends_key",
    "new_code",
    "new_verification",
    "pin_key",
    "after_wrong_pin",
    "pin_locked",
]

CODE_TTL = timedelta(minutes=10)
CODE_TRIES = 5
LINK_TTL = timedelta(hours=24)
PIN_TRIES = 10
PIN_LOCKOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Limit:
    """At most ``count`` tries in any ``window``."""

    count: int
    window: timedelta

    def recent(self, at: tuple[datetime, ...], now: datetime) -> tuple[datetime, ...]:
        return tuple(t for t in at if now - self.window < t <= now)

    def allows(self, at: tuple[datetime, ...], now: datetime) -> bool:
        return len(self.recent(at, now)) < self.count

    def record(self, at: tuple[datetime, ...], now: datetime) -> tuple[datetime, ...]:
        """The recent tries with ``now`` added (older ones are dropped, so records stay small)."""
        return (*self.recent(at, now), now)


#: Codes sent to one phone number, whatever registration asks.
CODE_SENDS = Limit(3, timedelta(hours=1))
#: Wrong PINs before a registration is locked for PIN_LOCKOUT.
PIN_WINDOW = Limit(PIN_TRIES, PIN_LOCKOUT)


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(key: bytes, slot: str, blind_index: str, code: str) -> str:
    """The stored form of a code (or a link's nonce) for one slot and address."""
    return hmac.new(key, f"{slot}\0{blind_index}\0{code}".encode(), hashlib.sha256).hexdigest()


def new_verification(key: bytes, registration_id: str, channel: str, index: int, blind_index: str, code: str,
                     now: datetime, previous: Verification | None = None) -> Verification:
    """The record of a code or link just sent; an earlier one for the same address keeps its send times."""
    slot = f"{registration_id}:{channel}:{index}"
    ttl = LINK_TTL if channel == "email" else CODE_TTL
    sent = previous.sent_at if previous is not None and previous.blind_index == blind_index else ()
    return Verification(registration_id=registration_id, channel=Channel(channel), contact_index=index,
                        blind_index=blind_index, code_hash=code_hash(key, slot, blind_index, code),
                        sent_at=CODE_SENDS.record(sent, now), expires_at=now + ttl)


class CodeCheck(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # past its time, or too many wrong tries: ask for a new one
    DONE = "done"  # already verified


def check_code(key: bytes, v: Verification | None, blind_index: str, code: str,
               now: datetime) -> tuple[CodeCheck, Verification | None]:
    """The verdict on ``code`` and the record to write (None when nothing changes)."""
    if v is None or v.blind_index != blind_index:
        return CodeCheck.EXPIRED, None
    if v.verified_at is not None:
        return CodeCheck.DONE, None
    if v.expires_at <= now or v.failed_tries >= CODE_TRIES:
        return CodeCheck.EXPIRED, None
    slot = f"{v.registration_id}:{v.channel.value}:{v.contact_index}"
    if hmac.compare_digest(code_hash(key, slot, blind_index, code.strip()), v.code_hash):
        return CodeCheck.OK, v.model_copy(update={"verified_at": now})
    tried = v.model_copy(update={"failed_tries": v.failed_tries + 1})
    return (CodeCheck.EXPIRED if tried.failed_tries >= CODE_TRIES else CodeCheck.WRONG), tried


def code_sends_key(blind_index: str) -> str:
    return f"code-sends:{blind_index}"


def pin_key(registration_id: str) -> str:
    return f"pin:{registration_id}"


def pin_locked(a: Attempts | None, now: datetime) -> bool:
    return a is not None and a.locked_until is not None and a.locked_until > now


def after_wrong_pin(a: Attempts | None, registration_id: str, now: datetime) -> Attempts:
    """The tries after one more wrong PIN; the tenth in the window locks the registration."""
    at = PIN_WINDOW.record(a.at if a is not None else (), now)
    locked = now + PIN_LOCKOUT if len(at) >= PIN_TRIES else (a.locked_until if a is not None else None)
    return Attempts(key=pin_key(registration_id), at=() if len(at) >= PIN_TRIES else at, locked_until=locked)
