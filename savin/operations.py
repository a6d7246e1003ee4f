"""Operator actions over Kafka: dead letters, delivery results."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field

from savin.delivery import merge_status
from savin.kafka import producer, read_topic
from savin.schemas import DeadLetter, DeliveryResult, DeliveryStatus
from savin.settings import Settings
from savin.topics import Topics

__all__ = ["list_dead_letters", "replay_dead_letters", "delivery_results", "NoticeHistory", "notice_histories"]


async def list_dead_letters(settings: Settings) -> list[DeadLetter]:
    topic = Topics(settings).dead_letters
    return [DeadLetter.model_validate_json(r.value) async for r in read_topic(settings.kafka_bootstrap, topic)]


async def replay_dead_letters(settings: Settings, dead_letter_id: str | None = None) -> int:
    """Publish dead letters back to their source topic, key and bytes unchanged.

    Events are deduplicated by event_id and notices by the ledger, so a replay of
    something already delivered sends nothing twice.
    """
    letters = await list_dead_letters(settings)
    if dead_letter_id:
        letters = [d for d in letters if str(d.dead_letter_id) == dead_letter_id]
    prod = producer(settings.kafka_bootstrap)
    await prod.start()
    try:
        for d in letters:
            key = base64.b64decode(d.key_b64) if d.key_b64 else None
            await prod.send_and_wait(d.source_topic, base64.b64decode(d.value_b64), key=key)
    finally:
        await prod.stop()
    return len(letters)


async def delivery_results(settings: Settings) -> list[DeliveryResult]:
    topic = Topics(settings).delivery_results
    return [DeliveryResult.model_validate_json(r.value) async for r in read_topic(settings.kafka_bootstrap, topic)]


@dataclass
class NoticeHistory:
    """Everything recorded about one notice, oldest first, and where it stands."""

    notice_id: uuid.UUID
    results: list[DeliveryResult] = field(default_factory=list)
    #: The status by the ledger's rules: a final status is never overwritten.
    status: DeliveryStatus | None = None

    def add(self, result: DeliveryResult) -> None:
        self.results.append(result)
        self.status = merge_status(self.status, result.status) or self.status

    def first(self, attr: str):
        return next((getattr(r, attr) for r in self.results if getattr(r, attr) is not None), None)

    @property
    def attempts(self) -> int:
        return sum(1 for r in self.results if r.source == "attempt" and r.status is not DeliveryStatus.SUPPRESSED)

    @property
    def last_error(self) -> str | None:
        return next((f"{r.error_code or ''} {r.error or ''}".strip() for r in reversed(self.results)
                     if r.error_code or r.error), None)


def notice_histories(results: list[DeliveryResult]) -> dict[uuid.UUID, NoticeHistory]:
    """Group the audit trail by notice, in the order it was written."""
    out: dict[uuid.UUID, NoticeHistory] = {}
    for r in results:
        out.setdefault(r.notice_id, NoticeHistory(r.notice_id)).add(r)
    return out
