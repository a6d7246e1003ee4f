"""What the stages share: dead-letter records and
error descriptions that never echo input values."""

from __future__ import annotations

import base64
import uuid

from pydantic import ValidationError

from savin.domain.clock import utcnow
from savin.schemas import DeadLetter, describe_errors

__all__ = ["dead_letter_record", "fault"]


def fault(e: Exception) -> str:
    """An unexpected exception, described without echoing input values."""
    if isinstance(e, ValidationError):
        return f"{e.title}: {describe_errors(e)}"
    return f"{type(e).__name__}: {e}"


def dead_letter_record(msg, reason: str) -> bytes:
    """The dead letter for a consumed record (a Faust message or an aiokafka
    record: both have topic, partition, offset, key and value)."""
    return DeadLetter(
        dead_letter_id=uuid.uuid4(),
        reason=reason,
        source_topic=msg.topic,
        source_partition=msg.partition,
        source_offset=msg.offset,
        key_b64=base64.b64encode(msg.key).decode() if msg.key is not None else None,
        value_b64=base64.b64encode(msg.value or b"").decode(),
        at=utcnow(),
    ).model_dump_json().encode()
