"""Which notices a custody event calls for, and whether an event is a repeat:
pure functions of the event, the registrations for its offender and the time."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from savin.domain.consent import contact_key
from savin.domain.escalation import ack_code
from savin.schemas import (
    EventEnvelope,
    NoticeJob,
    RegistrationStatus,
    StoredRegistration,
)

__all__ = ["notice_id", "wants", "notices_for", "corrections_for", "is_repeat"]


def notice_id(event_id: uuid.UUID, registration_id: str, channel: str, index: int = 0) -> uuid.UUID:
    """Deterministic, so a replayed event yields the same notices (and no resend)."""
    name = f"{registration_id}:{channel}" if index == 0 else contact_key(registration_id, channel, index)
    return uuid.uuid5(event_id, name)


def wants(reg: StoredRegistration, event: EventEnvelope) -> bool:
    """An active registration for the event's offender that chose this event type
    (or every type), or any active one for an event that is always sent."""
    if reg.status is not RegistrationStatus.ACTIVE or reg.offender_id != event.offender_id:
        return False
    return reg.event_types is None or event.event_type in reg.event_types or event.kind.always_sent  # type: ignore[attr-defined]


def is_repeat(first_seen: dt.datetime | None, now: dt.datetime, dedup_days: int) -> bool:
    """An event id first matched within the dedup window is a repeat."""
    return first_seen is not None and first_seen > now - dt.timedelta(days=dedup_days)


def notices_for(event: EventEnvelope, registrations: Iterable[StoredRegistration], now: dt.datetime,
                escalate: bool = False) -> list[NoticeJob]:
    """One notice per active registration that wants this event x verified contact.

    With ``escalate`` (the event's notices escalate until acknowledged) each notice
    carries the acknowledgement code, and a registration's calls come after its
    texts and emails: the deliver stage then holds a call back as a later step of
    the ladder, and places it at once only for a registration with nothing else."""
    body = event.model_dump(mode="json")
    jobs: list[NoticeJob] = []
    if not event.kind.notifies:
        return jobs
    for reg in registrations:
        if not wants(reg, event):
            continue
        per_channel: dict[str, int] = {}
        calls: list[NoticeJob] = []
        code = ack_code(str(event.event_id), reg.registration_id) if escalate else None
        for contact in reg.contacts:
            channel = contact.channel.value
            index = per_channel.get(channel, 0)
            per_channel[channel] = index + 1
            if not contact.verified:
                continue
            (calls if contact.channel.value == "voice" else jobs).append(
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
                    quiet_hours=reg.quiet_hours,
                    ack_code=code,
                )
            )
        jobs.extend(calls)
    return jobs


def corrections_for(retraction: EventEnvelope, registrations: Iterable[StoredRegistration], now: dt.datetime,
                    escalate: bool = False) -> list[NoticeJob]:
    """A retraction's notices, each naming the notice of the retracted event it corrects: the one
    the same registration and contact had, or would have had. The deliver stage sends a correction
    only where that notice went out, and cancels that notice where it has not yet; so a
    registration that never asked for the retracted event's type is told nothing."""
    retracted = retraction.payload.retracted_event_id  # type: ignore[attr-defined]
    return [job.model_copy(update={"corrects": notice_id(retracted, job.registration_id, job.channel.value,
                                                         job.contact_index)})
            for job in notices_for(retraction, registrations, now, escalate)]
