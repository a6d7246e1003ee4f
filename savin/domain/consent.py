"""Consent: which contact slots a registrant has opted out of, and what an SMS
reply asks for.

A contact slot is the n-th contact of one channel of a registration. An opt-out
(a STOP reply, an email's unsubscribe link, a provider's opt-out code)
suppresses that slot until the registrant opts in again; it never touches the
other slots.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

from savin.domain.links import read_token, sign_token

__all__ = [
    "HELP_WORDS",
    "OPTED_OUT",
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "Reply",
    "Slot",
    "contact_key",
    "read_reply",
    "read_unsubscribe_token",
    "unsubscribe_token",
]

#: The suppression reason recorded when a provider says "opted out" without a code.
OPTED_OUT = "opted-out"

#: The words carriers and Twilio treat as opting out, opting in, and asking for help.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_CODE = re.compile(r"^[0-9]{6}$")


class Reply(str, enum.Enum):
    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    HELP = "help"
    CODE = "code"  # a verification code
    OTHER = "other"


def contact_key(registration_id: str, channel: str, index: int) -> str:
    """Stable name of one contact slot: the n-th contact of a channel."""
    return f"{registration_id}:{channel}:{index}"


def read_reply(text: str) -> Reply:
    """What an SMS reply asks for; case, spaces and a trailing full stop do not matter."""
    word = " ".join(text.split()).upper().rstrip(".!")
    if word in OPT_OUT_WORDS:
        return Reply.OPT_OUT
    if word in OPT_IN_WORDS:
        return Reply.OPT_IN
    if word in HELP_WORDS:
        return Reply.HELP
    if _CODE.match(word.replace(" ", "")):
        return Reply.CODE
    return Reply.OTHER


class Slot(tuple):
    """One contact slot named by an unsubscribe token: (registration id, channel, index)."""

    __slots__ = ()

    def __new__(cls, registration_id: str, channel: str, index: int):
        return super().__new__(cls, (registration_id, channel, index))

    registration_id = property(lambda self: self[0])
    channel = property(lambda self: self[1])
    index = property(lambda self: self[2])


_UNSUBSCRIBE = "unsubscribe"


def unsubscribe_token(key: bytes, slot: Slot, expires_at: datetime) -> str:
    """A signed, expiring reference to a contact slot for an unsubscribe link (ids only)."""
    return sign_token(key, _UNSUBSCRIBE, (slot.registration_id, slot.channel, str(slot.index)), expires_at)


def read_unsubscribe_token(key: bytes, token: str, now: datetime) -> Slot | None:
    """The slot a token names, or None when it is forged, malformed or expired."""
    fields = read_token(key, _UNSUBSCRIBE, token, now)
    if fields is None or len(fields) != 3 or not fields[2].isdigit():
        return None
    return Slot(fields[0], fields[1], int(fields[2]))
