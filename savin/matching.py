"""Which notices a custody event calls for: a pure function of the event and
the registrations for its offender."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from savin.schemas import EventEnvelope, NoticeJob, StoredRegistration

__all__ = ["notice_id", "contact_key", "notices_for"]


def contact_key(registration_id: str, channel: str, index: int) -> str:
    """Stable name of one contact slot: the n-th contact of a channel."""
    return f"{registration_id}:{channel}:{index}"


def notice_id(event_id: uuid.UUID, registration_id: str, channel: str, index: int = 0) -> uuid.UUID:
    """Deterministic, so a replayed event yields the same notices (and no resend)."""
    name = f"{registration_id}:{channel}" if index == 0 else contact_key(registration_id, channel, index)
    return uuid.uuid5(event_id, name)


def notices_for(
    event: EventEnvelope,
    registrations: Iterable[StoredRegistration],
    now: dt.datetime,
    event_json: dict | None = None,
) -> list[NoticeJob]:
    """One notice per active registration that wants this event x verified contact."""
    body = event_json if event_json is not None else event.model_dump(mode="json")
    jobs: list[NoticeJob] = []
    for reg in registrations:
        if reg.offender_id != event.offender_id or not reg.wants(event.event_type):  # type: ignore[attr-defined]
            continue
        per_channel: dict[str, int] = {}
        for contact in reg.contacts:
            channel = contact.channel.value
            index = per_channel.get(channel, 0)
            per_channel[channel] = index + 1
            if not contact.verified:
                continue
            jobs.append(
                NoticeJob(
                    notice_id=notice_id(event.event_id, reg.registration_id, channel, index),
                    event_id=event.event_id,
                    event_type=event.event_type,  # type: ignore[attr-defined]
                    urgency=event.urgency,
                    registration_id=reg.registration_id,
                    offender_id=event.offender_id,
                    channel=contact.channel,
                    contact_index=index,
                    address_sealed=contact.address_sealed,
                    language=reg.language,
                    timezone=reg.timezone,
                    event=body,
                    created_at=now,
                )
            )
    return jobs
