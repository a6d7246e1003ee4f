"""The status stage: custody events in, each offender's current status out.

It keeps the offender-status view (`<ns>.offender-status`, compacted, keyed by
offender id) that the portal's offender search reads. It is a stage of its own,
not part of matching, so that keeping the view never slows a notice: it has its
own consumer group on ``custody-events`` and can run in its own workers
(``SAVIN_STAGES``). The offender-status topic is also its store's changelog.

It also counts, for the feed watchdog (:mod:`savin.streams.watchdog`), each
source's events: per partition and source, the newest event, the newest
heartbeat (``HEARTBEAT``, which moves no offender's status) and the events per
hour, by the time savin received them (the records' Kafka timestamps). Each
partition's counts go to ``feed-counts`` (one partition, compacted, keyed
``p<partition>``) at a commit, at most every ``min(SAVIN_FEED_CHECK_INTERVAL,
5 s)`` while events come, so a source's silence shows in them within that
time; a new holder of a partition takes its counts up from there. A crash can
count the records since the last commit twice in their hour (never a newer
time than the records had). The counts also say how many of the partition's
offenders each source reported last: the share a hold rule may be given is of
that number (:mod:`savin.streams.holding` reads it).

It dead-letters nothing: an invalid event is the match stage's to dead-letter,
and an event on the wrong partition is forwarded by the match stage to the
offender's partition, where this stage sees it too.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from pydantic import ValidationError

from savin.domain.clock import utcnow
from savin.domain.feeds import USUAL_HOURS
from savin.domain.status import status_after
from savin.ops.reading import read_topic
from savin.schemas import parse_event
from savin.schemas.safety import FeedCounts, SourceCounts
from savin.schemas.status import OffenderStatus
from savin.settings import Settings
from savin.streams.checkpoint import Pending
from savin.streams.stage import Stage
from savin.topics import Topics

__all__ = ["StatusStage"]

_STATUS = b"o:"  # + offender id -> JSON OffenderStatus
#: Seconds between a partition's feed counts on ``feed-counts`` at most, while its events come.
FEED_COUNTS_EVERY = 5.0
HEARTBEAT = "HEARTBEAT"


@dataclass
class _Source:
    last_event_at: float | None = None
    last_heartbeat_at: float | None = None
    hourly: dict[int, int] = field(default_factory=dict)
    offenders: int = 0

    def count(self, at: float, heartbeat: bool) -> None:
        if heartbeat:
            self.last_heartbeat_at = at if self.last_heartbeat_at is None else max(self.last_heartbeat_at, at)
            return
        self.last_event_at = at if self.last_event_at is None else max(self.last_event_at, at)
        hour = int(at // 3600)
        self.hourly[hour] = self.hourly.get(hour, 0) + 1

    def record(self, now: float) -> SourceCounts:
        oldest = int(now // 3600) - USUAL_HOURS - 1
        self.hourly = {h: n for h, n in self.hourly.items() if h >= oldest}
        return SourceCounts(last_event_at=_time(self.last_event_at), last_heartbeat_at=_time(self.last_heartbeat_at),
                            hourly={str(h): n for h, n in sorted(self.hourly.items())}, offenders=self.offenders)

    @classmethod
    def of(cls, sc: SourceCounts) -> _Source:
        return cls(sc.last_event_at and sc.last_event_at.timestamp(),
                   sc.last_heartbeat_at and sc.last_heartbeat_at.timestamp(),
                   {int(h): n for h, n in sc.hourly.items()}, sc.offenders)


def _time(t: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc) if t is not None else None


class StatusStage(Stage):
    name = "status"

    def __init__(self, settings: Settings, **kwargs):
        t = Topics(settings)
        super().__init__(settings, inputs=[t.custody_events], changelogs=[t.offender_status],
                         commit_interval=settings.commit_interval, batch_size=settings.match_batch_size, **kwargs)
        #: Partition -> source -> what it counted (restored from ``feed-counts`` on assignment).
        self.feeds: dict[int, dict[str, _Source]] = {}
        self._feeds_changed: set[int] = set()
        self._feeds_sent: dict[int, float] = {}  # partition -> time.monotonic() of its last record
        self.feed_counts_every = min(settings.feed_check_interval, FEED_COUNTS_EVERY)

    async def assigned(self, partitions: set[int]) -> None:
        for p in set(self.feeds) - partitions:
            del self.feeds[p]
        self._feeds_changed &= partitions
        missing = partitions - set(self.feeds)
        if not missing:
            return
        found: dict[int, FeedCounts] = {}
        async for r in read_topic(self.settings.kafka_bootstrap, self.topics.feed_counts):
            if r.value is not None and r.key in {f"p{p}".encode() for p in missing}:
                found[int(r.key[1:])] = FeedCounts.model_validate_json(r.value)
        for p in missing:
            self.feeds[p] = {source: _Source.of(sc) for source, sc in found[p].sources.items()} if p in found else {}

    def _feeds_due(self, partition: int) -> bool:
        return (partition in self._feeds_changed
                and time.monotonic() - self._feeds_sent.get(partition, 0.0) >= self.feed_counts_every)

    async def tick(self) -> None:
        # Counts that changed since their last record go out at the next commit, events or not.
        for p in list(self._feeds_changed):
            if self._feeds_due(p) and p in self.stores:
                self.checkpoint.touch(p, self.stores[p])

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
        if self._feeds_due(partition):
            now = time.time()
            counts = FeedCounts(partition=partition, at=_time(now),  # type: ignore[arg-type]
                                sources={s: c.record(now) for s, c in self.feeds.get(partition, {}).items()})
            topic = self.topics.feed_counts
            sent.append((topic, await self.producer.send(topic, counts.model_dump_json().encode(),
                                                         key=f"p{partition}".encode(), partition=0)))
            self._feeds_changed.discard(partition)
            self._feeds_sent[partition] = time.monotonic()
        return sent

    @staticmethod
    def _moved(feeds: dict[str, _Source], before: str | None, after: str | None) -> None:
        """An offender's newest event now comes from ``after`` (it came from ``before``, or the
        offender is new): the sources' offender counts follow."""
        if before == after:
            return
        if before is not None and (old := feeds.get(before)) is not None and old.offenders > 0:
            old.offenders -= 1
        if after is not None:
            feeds.setdefault(after, _Source()).offenders += 1

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
                heartbeat = event.event_type == HEARTBEAT  # type: ignore[attr-defined]
                received = r.timestamp / 1000 if r.timestamp and r.timestamp > 0 else now.timestamp()
                feeds = self.feeds.setdefault(tp.partition, {})
                feeds.setdefault(event.source, _Source()).count(received, heartbeat)
                self._feeds_changed.add(tp.partition)
                if heartbeat:
                    continue  # about no offender
                key = _STATUS + event.offender_id.encode()
                raw = pending.get(key)
                current = raw if raw is None or isinstance(raw, OffenderStatus) \
                    else OffenderStatus.model_validate_json(raw)
                after = status_after(current, event, now)
                if after is not current:
                    pending.put(key, after)  # type: ignore[arg-type] - serialised by changelog()
                    self._moved(feeds, current.source if current is not None else None, after.source)
            self.done(tp, records[-1].offset + 1)
