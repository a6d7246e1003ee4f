"""Notice jobs, delivery results and dead letters: savin's internal messages."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import Field

from savin.domain.escalation import CallResult
from savin.schemas.base import Strict, Timestamp, Uuid
from savin.schemas.events import Urgency
from savin.schemas.registration import Channel, QuietHours

__all__ = ["NoticeJob", "DeliveryStatus", "DeliveryResult", "DeadLetter", "DeadLetterReplay", "DEAD_LETTER_EXCERPT",
           "REPLAY_HEADER", "FINAL_STATUSES", "DONE_STATUSES"]


class NoticeJob(Strict):
    notice_id: Uuid
    event_id: Uuid
    event_type: str
    urgency: Urgency
    registration_id: str
    offender_id: str
    channel: Channel
    contact_index: Annotated[int, Field(ge=0)] = 0
    address_sealed: str
    language: str
    timezone: str
    #: The validated custody event as JSON: the templates' context.
    event: dict[str, Any]
    attempt: Annotated[int, Field(ge=0)] = 0
    not_before: Timestamp | None = None
    created_at: Timestamp
    #: When the custody event was published (its Kafka record's timestamp): where the
    #: publish-to-accepted latency starts. Absent on a job made before it was kept.
    published_at: Timestamp | None = None
    #: The registration's quiet hours (None: the default); routine notices wait through them.
    quiet_hours: QuietHours | None = None
    #: The code that acknowledges this event's notices (set when the notice escalates):
    #: printed in the SMS, behind the email's link, asked for by no one on a call.
    ack_code: str | None = None
    #: For a call of an escalation ladder: which call it is (0 the first).
    call: Annotated[int, Field(ge=0)] | None = None
    #: A correction: the notice of the retracted event it corrects. The deliver stage sends it
    #: only if that notice went out, and cancels that notice if it has not yet.
    corrects: Uuid | None = None
    #: The hold this notice was kept back by and released from.
    hold_id: Uuid | None = None


class DeliveryStatus(str, enum.Enum):
    ACCEPTED = "accepted"  # the provider took the notice
    SENT = "sent"  # provider callback: handed to the carrier
    DELIVERED = "delivered"
    RETRYING = "retrying"  # a temporary failure; a retry is scheduled
    UNDELIVERED = "undelivered"
    FAILED = "failed"  # permanent failure, or retries exhausted
    SUPPRESSED = "suppressed"  # the recipient opted out of this channel
    HELD = "held"  # a routine notice waiting for the registration's quiet hours to end
    CANCELLED = "cancelled"  # its event was retracted before it went out
    REJECTED = "rejected"  # an operator rejected the hold that kept it back


#: A notice in one of these states is not sent again.
DONE_STATUSES = frozenset(
    {DeliveryStatus.ACCEPTED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED,
     DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED, DeliveryStatus.CANCELLED,
     DeliveryStatus.REJECTED}
)
#: These states are never overwritten, whatever arrives later.
FINAL_STATUSES = frozenset(
    {DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED,
     DeliveryStatus.CANCELLED, DeliveryStatus.REJECTED}
)


class DeliveryResult(Strict):
    notice_id: Uuid
    registration_id: str
    event_id: Uuid | None = None
    event_type: str | None = None
    channel: Channel | None = None
    status: DeliveryStatus
    attempt: int = 0
    source: Literal["attempt", "callback"] = "attempt"
    provider: str | None = None
    provider_ref: str | None = None
    error_code: str | None = None
    error: str | None = None
    #: A held notice goes out at this time.
    not_before: Timestamp | None = None
    #: A call's status callback: what the call came to.
    call_result: CallResult | None = None
    #: A rejected notice: the hold, and the operator who rejected it.
    hold_id: Uuid | None = None
    decided_by: str | None = None
    at: Timestamp


class DeadLetter(Strict):
    """A record savin could not handle, with the reason and where the original is.

    A record larger than :data:`DEAD_LETTER_EXCERPT` bytes keeps only an excerpt
    (``value_truncated``); ``value_size`` and ``value_sha256`` describe the whole
    record, which stays at ``source_topic``/``source_partition``/``source_offset``
    for as long as that topic keeps it.
    """

    dead_letter_id: Uuid
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    key_b64: str | None
    value_b64: str
    value_size: int = 0
    value_sha256: str | None = None
    value_truncated: bool = False
    #: The dead letter this record was replayed from, when it failed again.
    replay_of: Uuid | None = None
    at: Timestamp


class DeadLetterReplay(Strict):
    """That a dead letter was sent back, and where the record went: one record
    per dead letter on the compacted ``dead-letter-replays`` topic, keyed by the
    dead letter's id, so a dead letter is replayed once however often replay runs."""

    dead_letter_id: Uuid
    to_topic: str
    to_partition: int
    to_offset: int
    at: Timestamp


#: Bytes of a record's value a dead letter keeps (the rest is described by its size and digest).
DEAD_LETTER_EXCERPT = 64 * 1024
#: The Kafka header a replayed record carries: the id of the dead letter it came from.
REPLAY_HEADER = "savin-replay-of"
