"""Published and internal message schemas (pydantic v2, strict, frozen)."""

from savin.schemas.base import Strict, describe_errors
from savin.schemas.events import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    CustodyEvent,
    EventEnvelope,
    Urgency,
    parse_event,
)
from savin.schemas.notices import (
    DONE_STATUSES,
    FINAL_STATUSES,
    DeadLetter,
    DeadLetterReplay,
    DeliveryResult,
    DeliveryStatus,
    NoticeJob,
)
from savin.schemas.registration import (
    Channel,
    Contact,
    Registration,
    RegistrationStatus,
    SealedContact,
    StoredRegistration,
)

__all__ = [
    "Strict", "describe_errors", "EVENT_ADAPTER", "EVENT_TYPES", "CustodyEvent", "EventEnvelope", "Urgency",
    "parse_event", "DONE_STATUSES", "FINAL_STATUSES", "DeadLetter", "DeadLetterReplay", "DeliveryResult", "DeliveryStatus",
    "NoticeJob", "Channel", "Contact", "Registration", "RegistrationStatus", "SealedContact", "StoredRegistration",
]
