"""Custody, supervision, parole, clemency and restitution events.

Every event shares one envelope and carries a payload typed by ``event_type``.
To add an event type: write its payload model, add one row to ``EVENT_TYPES``,
add its templates. Nothing else changes.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import AwareDatetime, Field, TypeAdapter, create_model

from savin.schemas.base import Strict

__all__ = [
    "Urgency",
    "EventSpec",
    "EVENT_TYPES",
    "CustodyEvent",
    "EVENT_ADAPTER",
    "parse_event",
    "EventEnvelope",
]

SCHEMA_VERSION = 1

Text = Annotated[str, Field(min_length=1, max_length=200)]


class Urgency(str, enum.Enum):
    URGENT = "urgent"
    ROUTINE = "routine"


# ---- payloads -------------------------------------------------------------


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
    projected_release_date: dt.date
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
    starts_at: AwareDatetime
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


Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


class Restitution(Strict):
    case_number: Text
    amount: Money
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    balance: Money


class Retraction(Strict):
    retracted_event_id: uuid.UUID
    reason: Text


# ---- the vocabulary -------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    payload: type[Strict]
    urgency: Urgency
    group: str


U, R = Urgency.URGENT, Urgency.ROUTINE

EVENT_TYPES: dict[str, EventSpec] = {
    "RELEASED": EventSpec(Released, U, "custody"),
    "RELEASE_SCHEDULED": EventSpec(ReleaseScheduled, R, "custody"),
    "ESCAPED": EventSpec(AtFacility, U, "custody"),
    "RECAPTURED": EventSpec(AtFacility, R, "custody"),
    "TRANSFERRED": EventSpec(Transferred, R, "custody"),
    "DECEASED": EventSpec(NoPayload, R, "custody"),
    "SUPERVISION_STARTED": EventSpec(Supervision, R, "supervision"),
    "ABSCONDED": EventSpec(Supervision, U, "supervision"),
    "SUPERVISION_REVOKED": EventSpec(Supervision, R, "supervision"),
    "SUPERVISION_DISCHARGED": EventSpec(Supervision, R, "supervision"),
    "HEARING_SCHEDULED": EventSpec(Hearing, R, "parole_board"),
    "HEARING_RESCHEDULED": EventSpec(Hearing, R, "parole_board"),
    "HEARING_CANCELLED": EventSpec(HearingCancelled, R, "parole_board"),
    "HEARING_DECISION": EventSpec(HearingDecision, R, "parole_board"),
    "COMMUTATION": EventSpec(NoPayload, R, "clemency"),
    "PARDON": EventSpec(NoPayload, R, "clemency"),
    "RESTITUTION_ORDERED": EventSpec(Restitution, R, "restitution"),
    "RESTITUTION_PAYMENT": EventSpec(Restitution, R, "restitution"),
    # A retraction usually corrects an alarming notice, so it goes out at once.
    "EVENT_RETRACTED": EventSpec(Retraction, U, "correction"),
}


class EventEnvelope(Strict):
    event_id: uuid.UUID
    offender_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    offender_name: Text
    occurred_at: AwareDatetime
    source: Text
    schema_version: Literal[1] = SCHEMA_VERSION

    @property
    def spec(self) -> EventSpec:
        return EVENT_TYPES[self.event_type]  # type: ignore[attr-defined]

    @property
    def urgency(self) -> Urgency:
        return self.spec.urgency


def _event_model(event_type: str, spec: EventSpec) -> type[EventEnvelope]:
    name = "".join(w.capitalize() for w in event_type.split("_")) + "Event"
    return create_model(
        name,
        __base__=EventEnvelope,
        event_type=(Literal[event_type], ...),  # type: ignore[valid-type]
        payload=(spec.payload, NoPayload() if spec.payload is NoPayload else ...),
    )


EVENT_MODELS: dict[str, type[EventEnvelope]] = {
    et: _event_model(et, spec) for et, spec in EVENT_TYPES.items()
}

CustodyEvent = Annotated[
    Union[tuple(EVENT_MODELS.values())],  # type: ignore[misc]
    Field(discriminator="event_type"),
]
EVENT_ADAPTER: TypeAdapter = TypeAdapter(CustodyEvent)


def parse_event(raw: bytes | str) -> EventEnvelope:
    """Validate one JSON event; raises pydantic.ValidationError naming the field."""
    return EVENT_ADAPTER.validate_json(raw)
