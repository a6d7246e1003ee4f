"""Victim registrations: the published input shape and the sealed stored shape."""

from __future__ import annotations

import enum
import re
import zoneinfo
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from savin.domain.vocabulary import NOTICE_TYPES
from savin.schemas.base import Strict, Timestamp

__all__ = ["Actor", "Channel", "Contact", "QuietHours", "Registration", "SealedContact", "StoredRegistration",
           "RegistrationStatus"]

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class Channel(str, enum.Enum):
    SMS = "sms"
    EMAIL = "email"
    VOICE = "voice"


class Actor(str, enum.Enum):
    """Who made a change: the registrant on the portal, an operator, an SMS reply,
    an email's unsubscribe link, or a provider (e.g. Twilio's own STOP handling)."""

    PORTAL = "portal"
    OPERATOR = "operator"
    INBOUND_SMS = "inbound_sms"
    EMAIL_LINK = "email_link"
    PROVIDER = "provider"


class RegistrationStatus(str, enum.Enum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


E164 = r"^\+[1-9][0-9]{6,14}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Contact(Strict):
    # The schema says what the validator below checks: the address's form follows the channel.
    model_config = ConfigDict(json_schema_extra={"allOf": [{
        "if": {"properties": {"channel": {"const": "email"}}},
        "then": {"properties": {"address": {"pattern": EMAIL}}},
        "else": {"properties": {"address": {"pattern": E164}}},
    }]})

    channel: Channel
    address: Annotated[str, Field(min_length=3, max_length=254)]
    verified: bool = False

    @model_validator(mode="after")
    def _address_fits_channel(self):
        pattern = EMAIL if self.channel is Channel.EMAIL else E164
        if not re.fullmatch(pattern[1:-1], self.address):
            what = "an email address" if self.channel is Channel.EMAIL else "an E.164 phone number like +15735551234"
            # The address itself is left out of the message: it is personal data.
            raise ValueError(f"address must be {what} for channel {self.channel.value}")
        return self


#: An event type's name; the schema lists them, the validator below names the unknown ones.
EventTypeName = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(NOTICE_TYPES)})]


def _check_event_types(v: tuple[str, ...] | None):
    if v is None:
        return v
    unknown = sorted(set(v) - set(NOTICE_TYPES))
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    return v


def _check_timezone(v: str) -> str:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {v!r}") from None
    return v


Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="A time of day, HH:MM")]


class QuietHours(Strict):
    """The hours, in the registration's time zone, in which routine notices wait;
    ``start`` after ``end`` spans midnight (21:00 to 08:00)."""

    start: Clock = "21:00"
    end: Clock = "08:00"

    @model_validator(mode="after")
    def _not_empty(self):
        if self.start == self.end:
            raise ValueError("quiet hours must start and end at different times")
        return self


class Registration(Strict):
    """What a registrar submits. Holds personal data: never written to Kafka as is."""

    registration_id: Id
    offender_id: Id
    #: Optional: a registrant may stay nameless.
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    contacts: Annotated[tuple[Contact, ...], Field(min_length=1, max_length=10)]
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")] = "en"
    event_types: tuple[EventTypeName, ...] | None = None
    pin: Annotated[str, Field(pattern=r"^[0-9]{4,8}$")] | None = None
    status: RegistrationStatus = RegistrationStatus.ACTIVE
    #: Checked against the time zone database savin runs with, which a schema cannot list.
    timezone: Annotated[str, Field(description="An IANA time zone name, e.g. America/Chicago")] = "America/Chicago"
    #: None: the default quiet hours (21:00 to 08:00).
    quiet_hours: QuietHours | None = None

    _v_events = field_validator("event_types")(classmethod(lambda cls, v: _check_event_types(v)))
    _v_tz = field_validator("timezone")(classmethod(lambda cls, v: _check_timezone(v)))


class SealedContact(Strict):
    channel: Channel
    address_sealed: str
    verified: bool
    #: HMAC-SHA256 of the normalised address under the index key (base64url, no padding):
    #: finds a registration by phone or email without the address.
    blind_index: str | None = None
    #: Who verified the contact, when it is verified.
    verified_by: Actor | None = None


class StoredRegistration(Strict):
    """A registration as it travels on ``savin.registrations`` and sits in tables."""

    registration_id: Id
    offender_id: Id
    name_sealed: str | None = None
    contacts: tuple[SealedContact, ...]
    language: str
    event_types: tuple[str, ...] | None
    pin_hash: str | None
    status: RegistrationStatus
    timezone: str
    quiet_hours: QuietHours | None = None
    updated_at: Timestamp
    #: Who made this change; every change is a new record on the registrations topic.
    changed_by: Actor = Actor.OPERATOR
    #: When the registration was made and when it was cancelled, carried by every later record, so the
    #: statistics count them after compaction has kept only a registration's newest record.
    created_at: Timestamp | None = None
    cancelled_at: Timestamp | None = None
    kind: Literal["registration"] = "registration"

