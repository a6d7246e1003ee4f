"""Custody, supervision, parole, clemency and restitution events.

Every event shares one envelope and carries a payload typed by ``event_type``
(:data:`savin.domain.vocabulary.EVENT_TYPES`).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter, create_model

from savin.domain.vocabulary import EVENT_TYPES, EventKind, Urgency
from savin.schemas import payloads
from savin.schemas.base import SchemaVersion, Strict, Timestamp, Uuid
from savin.schemas.payloads import NoPayload, Text

__all__ = ["Urgency", "EVENT_TYPES", "CustodyEvent", "EVENT_ADAPTER", "EVENT_MODELS", "parse_event", "EventEnvelope"]

SCHEMA_VERSION = 1


OffenderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]

#: The offender fields of an event about no one (a heartbeat), when its producer leaves them out.
NO_OFFENDER = "heartbeat"


class EventEnvelope(Strict):
    event_id: Uuid
    offender_id: OffenderId
    offender_name: Text
    occurred_at: Timestamp
    source: Text
    schema_version: SchemaVersion = SCHEMA_VERSION

    @property
    def kind(self) -> EventKind:
        return EVENT_TYPES[self.event_type]  # type: ignore[attr-defined]

    @property
    def urgency(self) -> Urgency:
        return self.kind.urgency


def _event_model(event_type: str, spec: EventKind) -> type[EventEnvelope]:
    name = "".join(w.capitalize() for w in event_type.split("_")) + "Event"
    payload = getattr(payloads, spec.payload)
    # An event that notifies no one is about no one: its offender fields may be left out.
    about_no_one = {} if spec.notifies else {"offender_id": (OffenderId, NO_OFFENDER),
                                              "offender_name": (Text, NO_OFFENDER)}
    return create_model(
        name,
        __base__=EventEnvelope,
        event_type=(Literal[event_type], ...),  # type: ignore[valid-type]
        payload=(payload, NoPayload() if payload is NoPayload else ...),
        **about_no_one,
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
