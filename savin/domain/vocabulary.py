"""The event vocabulary as one table: for each event type its payload, its
urgency, its group, its SMS segment budget and whether every registrant gets
it whatever event types they chose.

To add an event type: write its payload model (:mod:`savin.schemas.payloads`),
add one row here, add its templates. Nothing else changes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Urgency", "EventKind", "EVENT_TYPES", "NOTICE_KINDS", "NOTICE_TYPES", "kind_of"]


class Urgency(str, enum.Enum):
    URGENT = "urgent"  # at once, day or night, before anything routine
    ROUTINE = "routine"


@dataclass(frozen=True)
class EventKind:
    #: The name of its payload model in :mod:`savin.schemas.payloads` (named, not
    #: imported, so the wire contracts depend on the vocabulary and not the reverse).
    payload: str
    urgency: Urgency
    group: str
    #: The most SMS segments its text may take (hearings carry long directions).
    sms_segments: int
    #: Sent to every active registration of the offender, whatever event types it chose.
    always_sent: bool = False
    #: Whether it notifies anyone at all (a heartbeat only tells the feed watchdog a source is alive).
    notifies: bool = True


U, R = Urgency.URGENT, Urgency.ROUTINE

EVENT_TYPES: dict[str, EventKind] = {
    "RELEASED": EventKind("Released", U, "custody", 5),
    "RELEASE_SCHEDULED": EventKind("ReleaseScheduled", R, "custody", 4),
    "ESCAPED": EventKind("AtFacility", U, "custody", 5),
    "RECAPTURED": EventKind("AtFacility", R, "custody", 4),
    "TRANSFERRED": EventKind("Transferred", R, "custody", 4),
    "DECEASED": EventKind("NoPayload", R, "custody", 4),
    "SUPERVISION_STARTED": EventKind("Supervision", R, "supervision", 4),
    "ABSCONDED": EventKind("Supervision", U, "supervision", 5),
    "SUPERVISION_REVOKED": EventKind("Supervision", R, "supervision", 4),
    "SUPERVISION_DISCHARGED": EventKind("Supervision", R, "supervision", 4),
    "HEARING_SCHEDULED": EventKind("Hearing", R, "parole_board", 6),
    "HEARING_RESCHEDULED": EventKind("Hearing", R, "parole_board", 6),
    "HEARING_CANCELLED": EventKind("HearingCancelled", R, "parole_board", 4),
    "HEARING_DECISION": EventKind("HearingDecision", R, "parole_board", 4),
    "COMMUTATION": EventKind("NoPayload", R, "clemency", 4),
    "PARDON": EventKind("NoPayload", R, "clemency", 4),
    "RESTITUTION_ORDERED": EventKind("Restitution", R, "restitution", 4),
    "RESTITUTION_PAYMENT": EventKind("Restitution", R, "restitution", 4),
    # A retraction usually corrects an alarming notice: at once, and to everyone who may have had it.
    "EVENT_RETRACTED": EventKind("Retraction", U, "correction", 5, always_sent=True),
    # A source saying it is alive while it has nothing to report; the match stage sends nothing.
    "HEARTBEAT": EventKind("NoPayload", R, "feed", 1, notifies=False),
}

#: The event types that notify someone (every type but ``HEARTBEAT``), and their kinds.
NOTICE_KINDS: dict[str, EventKind] = {t: k for t, k in EVENT_TYPES.items() if k.notifies}
NOTICE_TYPES: tuple[str, ...] = tuple(NOTICE_KINDS)


def kind_of(event_type: str) -> EventKind | None:
    return EVENT_TYPES.get(event_type)
