"""Auditing notices: the delivery-results topic grouped per notice, with the
status the ledger's rules give."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from savin.domain.delivery import merge_status
from savin.ops.reading import read_topic
from savin.schemas import DeliveryResult, DeliveryStatus
from savin.settings import Settings
from savin.topics import Topics

__all__ = ["delivery_results", "NoticeHistory", "notice_histories"]


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
