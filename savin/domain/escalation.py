"""The escalation ladder of an urgent notice, and the short code that
acknowledges one, as pure rules.

An urgent notice goes by SMS and email at once. Unless someone acknowledges
it, a voice call follows after ``first_call_after``; a call nobody answered
(or an answering machine took) is repeated every ``unanswered_every``, a call
answered without the keypad confirmation every ``answered_every``, until
``give_up_after`` from the first send. An acknowledgement on any channel
ends the ladder. The defaults follow VINE's practice, with a first call
five minutes after the text and email instead of at once.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["ACK_ALPHABET", "CallResult", "Ladder", "ack_code", "next_call", "escalates", "RESULT_RANK"]


class CallResult(str, enum.Enum):
    UNANSWERED = "unanswered"  # no answer, busy, failed
    MACHINE = "machine"  # an answering machine: a neutral message was left
    ANSWERED = "answered"  # a person answered but did not press 1
    CONFIRMED = "confirmed"  # a person pressed 1: acknowledged


#: The better of two results of one round of calls counts (a person answered one of them).
RESULT_RANK = {CallResult.UNANSWERED: 0, CallResult.MACHINE: 1, CallResult.ANSWERED: 2, CallResult.CONFIRMED: 3}


def escalates(urgency: str, escalate_routine: bool = False) -> bool:
    """Whether an event's notices are followed up until acknowledged."""
    return urgency == "urgent" or escalate_routine


@dataclass(frozen=True)
class Ladder:
    first_call_after: timedelta = timedelta(minutes=5)
    unanswered_every: timedelta = timedelta(minutes=30)
    answered_every: timedelta = timedelta(hours=2)
    give_up_after: timedelta = timedelta(hours=24)


def next_call(ladder: Ladder, started_at: datetime, last_call_at: datetime | None,
              last_result: CallResult | None) -> datetime | None:
    """When the next call of an unacknowledged notice is due, or None when the ladder is done."""
    if last_result is CallResult.CONFIRMED:
        return None
    if last_call_at is None:
        due = started_at + ladder.first_call_after
    elif last_result is CallResult.ANSWERED:
        due = last_call_at + ladder.answered_every
    else:
        due = last_call_at + ladder.unanswered_every
    return due if due < started_at + ladder.give_up_after else None


#: Letters and digits that cannot be mistaken for one another on a phone screen or keypad.
ACK_ALPHABET = "ACDEFHJKMNPRTUVWXY3479"


def ack_code(event_id: str, registration_id: str, length: int = 4) -> str:
    """The short code printed in a notice, which a reply quotes to acknowledge it.

    The same for every channel of one event and registration, so any of them
    acknowledges all; it needs no secret, because only a reply from the
    registration's own number is read."""
    n = int.from_bytes(hashlib.sha256(f"{event_id}\0{registration_id}".encode()).digest()[:8], "big")
    chars = []
    for _ in range(length):
        n, r = divmod(n, len(ACK_ALPHABET))
        chars.append(ACK_ALPHABET[r])
    return "".join(chars)


# ---- one ladder's state, step by step ------------------------------------------------------
#
# The state is the published :class:`~savin.schemas.escalation.Escalation` record; each
# function takes one and returns the next (``model_copy``), so the deliver stage only stores
# and publishes what these say.


def ladder_opened(esc, ladder: Ladder, now: datetime, only_calls: bool):
    """A new ladder's first call: after ``first_call_after``, or at once for a registration
    that has nothing but calls (there is nothing to wait for)."""
    first = now if only_calls else now + ladder.first_call_after
    return esc.model_copy(update={"next_call_at": first, "updated_at": now})


def call_placed(esc, ladder: Ladder, now: datetime):
    """A round of calls went out: the next is planned as if nobody answered, until the
    calls' results say otherwise (so a lost status callback cannot stop the ladder)."""
    nxt = next_call(ladder, esc.started_at, now, CallResult.UNANSWERED)
    return esc.model_copy(update={"calls": esc.calls + 1, "last_call_at": now, "last_result": None,
                                  "next_call_at": nxt, "updated_at": now})


def call_ended(esc, ladder: Ladder, result: CallResult, now: datetime):
    """A call of the latest round ended with ``result``; the best result of the round counts."""
    if esc.last_call_at is None:
        return esc
    best = result if esc.last_result is None or RESULT_RANK[result] > RESULT_RANK[esc.last_result] \
        else esc.last_result
    nxt = next_call(ladder, esc.started_at, esc.last_call_at, best)
    return esc.model_copy(update={"last_result": best, "next_call_at": nxt, "updated_at": now})


def channel_lost(esc, now: datetime):
    """A text or email of the notice failed for good: before any call, the call comes at once."""
    if esc.calls or esc.next_call_at is None or esc.next_call_at <= now:
        return esc
    return esc.model_copy(update={"next_call_at": now, "updated_at": now})
