"""Acknowledgements, escalation ladders, calls and registration flags: the
records that get an urgent notice to a person.

* :class:`Acknowledgement` (``<ns>.acknowledgements``, keyed by registration
  id): someone confirmed they received the notices of one event, on one
  channel (an SMS reply, the email's link, the keypad, the portal). One
  acknowledges the event's notices on every channel.
* :class:`Escalation` (``<ns>.escalations``, compacted, keyed by
  ``<registration id>:<event id>``, on the registration's partition): the
  state of one event's ladder for one registration, written by the deliver
  stage whenever it changes; the web reads it to know which notices are
  waiting for an acknowledgement.
* :class:`CallRecord` (``<ns>.calls``, compacted and time-retained, keyed by
  the call's notice id): what one call says, sealed, written by the worker
  before the call is placed and read by the web process that serves the
  call's TwiML; ``answered_at`` is set by the web when the TwiML is first
  served (the URL is single-use).
* :class:`RegistrationFlag` (``<ns>.registration-flags``, compacted, keyed by
  ``<registration id>:<flag>[:<channel>:<index>]``): something about a
  registration an operator must look at.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field

from savin.domain.escalation import CallResult
from savin.schemas.base import Strict, Timestamp, Uuid
from savin.schemas.registration import Channel

__all__ = ["AckChannel", "Acknowledgement", "EscalationState", "Escalation", "CallRecord", "RegistrationFlag",
           "FlagKind", "CallResult"]

RegistrationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class AckChannel(str, enum.Enum):
    SMS = "sms"  # a reply quoting the notice's code (or 1)
    EMAIL = "email"  # the signed link in the notice email
    VOICE = "voice"  # 1 on the keypad during a call
    PORTAL = "portal"  # the button on the manage pages


class Acknowledgement(Strict):
    """The registrant confirmed the notices of ``event_id``."""

    registration_id: RegistrationId
    event_id: Uuid
    channel: AckChannel
    #: The notice (or call) the acknowledgement came through, when there is one.
    notice_id: Uuid | None = None
    at: Timestamp
    kind: Literal["acknowledgement"] = "acknowledgement"


class EscalationState(str, enum.Enum):
    OPEN = "open"  # waiting for an acknowledgement; calls may follow
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"  # the ladder ended without one: for operators
    CANCELLED = "cancelled"  # its event was retracted: no acknowledgement is owed, no flag is raised


class Escalation(Strict):
    registration_id: RegistrationId
    event_id: Uuid
    event_type: str
    offender_id: str
    state: EscalationState
    #: The short code printed in the notice (an SMS reply quotes it).
    code: str
    started_at: Timestamp
    #: Calls placed so far, and what the last one came to.
    calls: Annotated[int, Field(ge=0)] = 0
    last_call_at: Timestamp | None = None
    last_result: CallResult | None = None
    #: When the next call is due (None: no call is planned).
    next_call_at: Timestamp | None = None
    acknowledged_by: AckChannel | None = None
    acknowledged_at: Timestamp | None = None
    updated_at: Timestamp
    kind: Literal["escalation"] = "escalation"


class CallRecord(Strict):
    """One call: who it is for and what it says (sealed), for the web to serve."""

    call_id: Uuid  # the call's notice id
    registration_id: RegistrationId
    event_id: Uuid
    language: str
    #: The :class:`~savin.rendering.voice.RenderedVoice` parts as JSON, sealed (purpose ``call``).
    content_sealed: str
    #: Ask for the registrant's PIN before the notice is spoken (SAVIN_VOICE_PIN).
    pin_required: bool = True
    created_at: Timestamp
    #: The TwiML URL stops working after this.
    expires_at: Timestamp
    #: Set when the TwiML was first served: the URL is single-use.
    answered_at: Timestamp | None = None
    kind: Literal["call"] = "call"


class FlagKind(str, enum.Enum):
    CHANNEL_FAILED = "channel_failed"  # a contact failed for good (STOP, invalid number, undeliverable)
    UNACKNOWLEDGED = "unacknowledged"  # an urgent notice's ladder ended without an acknowledgement


class RegistrationFlag(Strict):
    registration_id: RegistrationId
    flag: FlagKind
    channel: Channel | None = None
    contact_index: Annotated[int, Field(ge=0)] | None = None
    event_id: Uuid | None = None
    notice_id: Uuid | None = None
    #: A provider code or a few words; never personal data.
    reason: Annotated[str, Field(max_length=200)] | None = None
    at: Timestamp
    kind: Literal["registration-flag"] = "registration-flag"

    @property
    def key(self) -> str:
        """Its key on ``registration-flags``: one record per registration, flag, contact and event."""
        key = f"{self.registration_id}:{self.flag.value}"
        if self.channel is not None:
            key += f":{self.channel.value}:{self.contact_index if self.contact_index is not None else ''}"
        if self.event_id is not None:
            key += f":{self.event_id}"
        return key
