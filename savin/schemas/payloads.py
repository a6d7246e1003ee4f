"""The payload of each event type: what the event says beyond the envelope."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field

from savin.schemas.base import Amount, Day, Strict, Timestamp, Uuid

Text = Annotated[str, Field(min_length=1, max_length=200)]

#: Any event type a notice can be about (a retraction cannot retract a retraction).
RetractableType = Literal[
    "RELEASED", "RELEASE_SCHEDULED", "ESCAPED", "RECAPTURED", "TRANSFERRED", "DECEASED",
    "SUPERVISION_STARTED", "ABSCONDED", "SUPERVISION_REVOKED", "SUPERVISION_DISCHARGED",
    "HEARING_SCHEDULED", "HEARING_RESCHEDULED", "HEARING_CANCELLED", "HEARING_DECISION",
    "COMMUTATION", "PARDON", "RESTITUTION_ORDERED", "RESTITUTION_PAYMENT",
]


class NoPayload(Strict):
    pass


class ReleaseType(str, enum.Enum):
    PAROLE = "parole"
    CONDITIONAL_RELEASE = "conditional_release"
    SENTENCE_COMPLETED = "sentence_completed"
    COURT_ORDER = "court_order"
    OTHER = "other"


class Released(Strict):
    release_type: ReleaseType
    facility: Text


class ReleaseScheduled(Strict):
    projected_release_date: Day
    facility: Text


class AtFacility(Strict):
    facility: Text


class Transferred(Strict):
    from_facility: Text
    to_facility: Text


class Supervision(Strict):
    district_office: Text


class Hearing(Strict):
    hearing_id: Text
    starts_at: Timestamp
    location: Text
    how_to_attend: Annotated[str, Field(min_length=1, max_length=500)]


class HearingCancelled(Strict):
    hearing_id: Text
    reason: Text | None = None


class HearingOutcome(str, enum.Enum):
    GRANTED = "granted"
    DENIED = "denied"
    CONTINUED = "continued"
    DEFERRED = "deferred"


class HearingDecision(Strict):
    hearing_id: Text
    decision: HearingOutcome


Money = Amount


class Restitution(Strict):
    case_number: Text
    amount: Money
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    balance: Money


class Retraction(Strict):
    retracted_event_id: Uuid
    #: What the withdrawn event said and when, so the notice can name it in words
    #: a victim recognises ("our notice of Nov 20 that ... was released").
    retracted_event_type: RetractableType
    retracted_occurred_at: Timestamp
    reason: Text
