"""The stages' error policy: a record that cannot be handled becomes a dead
letter with the reason, and the records behind it flow on.

Dead letters are bounded: a record of any size gives a letter well within
the producer's request limit, keeping an excerpt of the value, its size and
its SHA-256, and where the original is (topic, partition, offset). Reasons
never echo input values, which may hold personal data.
"""

from __future__ import annotations

import base64
import hashlib
import uuid

from pydantic import ValidationError

from savin.domain.clock import utcnow
from savin.schemas import DeadLetter, describe_errors
from savin.schemas.notices import DEAD_LETTER_EXCERPT, REPLAY_HEADER

__all__ = ["dead_letter_record", "fault", "reason_for"]

#: Bytes of a record's key a dead letter keeps; savin's keys are ids far shorter.
KEY_EXCERPT = 1024


def fault(e: BaseException) -> str:
    """An unexpected exception, described without echoing input values."""
    if isinstance(e, ValidationError):
        return f"{e.title}: {describe_errors(e)}"
    return f"{type(e).__name__}: {e}"


def reason_for(e: BaseException, what: str) -> str:
    """Why handling a ``what`` failed: ``invalid event: payload.facility: Field required``."""
    if isinstance(e, ValidationError):
        return f"invalid {what}: {describe_errors(e)}"
    if isinstance(e, (ValueError, UnicodeDecodeError)) and not isinstance(e, LookupError):
        return f"invalid {what}: {type(e).__name__}"
    return f"{what} failed: {fault(e)}"


def _replay_of(headers) -> uuid.UUID | None:
    for name, value in headers or ():
        if name == REPLAY_HEADER:
            try:
                return uuid.UUID(bytes(value).decode())
            except ValueError:
                return None
    return None


def dead_letter_record(record, reason: str) -> bytes:
    """The dead letter for a consumed aiokafka record."""
    value = record.value or b""
    key = record.key
    return DeadLetter(
        dead_letter_id=uuid.uuid4(),
        reason=reason[:2000],
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        key_b64=base64.b64encode(key[:KEY_EXCERPT]).decode() if key is not None else None,
        value_b64=base64.b64encode(value[:DEAD_LETTER_EXCERPT]).decode(),
        value_size=len(value),
        value_sha256=hashlib.sha256(value).hexdigest(),
        value_truncated=len(value) > DEAD_LETTER_EXCERPT or (key is not None and len(key) > KEY_EXCERPT),
        replay_of=_replay_of(getattr(record, "headers", None)),
        at=utcnow(),
    ).model_dump_json().encode()
