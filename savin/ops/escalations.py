"""The escalation ladders of urgent notices and the registration flags, as
operators read them: the latest state of each (registration, event) ladder
from ``escalations``, and every flag still on ``registration-flags``. Ids,
channels and codes only; never an address."""

from __future__ import annotations

from pydantic import ValidationError

from savin.ops.reading import read_topic
from savin.schemas.escalation import Escalation, RegistrationFlag
from savin.settings import Settings
from savin.topics import Topics

__all__ = ["latest_escalations", "registration_flags"]


async def latest_escalations(settings: Settings) -> list[Escalation]:
    """The latest state of every ladder still on the topic, oldest first."""
    latest: dict[tuple[str, str], Escalation] = {}
    async for r in read_topic(settings.kafka_bootstrap, Topics(settings).escalations):
        try:
            e = Escalation.model_validate_json(r.value or b"")
        except ValidationError:
            continue
        latest[(e.registration_id, str(e.event_id))] = e
    return sorted(latest.values(), key=lambda e: e.started_at)


async def registration_flags(settings: Settings) -> list[RegistrationFlag]:
    """The latest of each flag (by key), oldest first."""
    latest: dict[bytes, RegistrationFlag] = {}
    async for r in read_topic(settings.kafka_bootstrap, Topics(settings).registration_flags):
        try:
            latest[r.key or b""] = RegistrationFlag.model_validate_json(r.value or b"")
        except ValidationError:
            continue
    return sorted(latest.values(), key=lambda f: f.at)
