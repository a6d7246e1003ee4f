"""The status stage: custody events in, each offender's current status out.

It keeps the offender-status view (`<ns>.offender-status`, compacted, keyed by
offender id) that the portal's offender search reads. It is a stage of its own,
not part of matching, so that keeping the view never slows a notice: it has its
own consumer group on ``custody-events`` and can run in its own workers
(``SAVIN_STAGES``). The offender-status topic is also its store's changelog.

It dead-letters nothing: an invalid event is the match stage's to dead-letter,
and an event on the wrong partition is forwarded by the match stage to the
offender's partition, where this stage sees it too.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import TopicPartition
from pydantic import ValidationError

from savin.domain.clock import utcnow
from savin.domain.status import status_after
from savin.schemas import parse_event
from savin.schemas.status import OffenderStatus
from savin.settings import Settings
from savin.streams.checkpoint import Pending
from savin.streams.stage import Stage
from savin.topics import Topics

__all__ = ["StatusStage"]

_STATUS = b"o:"  # + offender id -> JSON OffenderStatus


class StatusStage(Stage):
    name = "status"

    def __init__(self, settings: Settings, **kwargs):
        t = Topics(settings)
        super().__init__(settings, inputs=[t.custody_events], changelogs=[t.offender_status],
                         commit_interval=settings.commit_interval, batch_size=settings.match_batch_size, **kwargs)

    def restore(self, pending: Pending, record) -> None:
        pending.put(_STATUS + record.key, record.value)

    async def changelog(self, partition: int, pending: Pending):
        # Each offender's latest status once per commit, however many events moved it.
        topic = self.topics.offender_status
        sent = []
        for key, value in list(pending.items.items()):
            if isinstance(value, OffenderStatus):  # kept as an object until now: serialised once
                value = pending.items[key] = value.model_dump_json().encode()
                sent.append((topic, await self.producer.send(topic, value, key=key[len(_STATUS):],
                                                             partition=partition)))
        return sent

    async def handle(self, batches: Mapping[TopicPartition, list]) -> None:
        now = utcnow()
        for tp, records in batches.items():
            if not records or (pending := self.begin(tp, records[0].offset)) is None:
                continue
            for r in records:
                try:
                    event = parse_event(r.value or b"")
                except ValidationError:
                    continue  # dead-lettered by the match stage
                if self.home(event.offender_id.encode()) != tp.partition:
                    continue  # forwarded to its partition by the match stage
                key = _STATUS + event.offender_id.encode()
                raw = pending.get(key)
                current = raw if raw is None or isinstance(raw, OffenderStatus) \
                    else OffenderStatus.model_validate_json(raw)
                after = status_after(current, event, now)
                if after is not current:
                    pending.put(key, after)  # type: ignore[arg-type] - serialised by changelog()
            self.done(tp, records[-1].offset + 1)
