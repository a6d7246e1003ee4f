"""The feed watchdog: every ``SAVIN_FEED_CHECK_INTERVAL`` seconds it judges
each upstream source by the rules of :mod:`savin.domain.feeds` (stale: silent
past its ``SAVIN_FEED_SILENT_AFTER`` threshold; low: far below its usual rate)
and says so when a source's state changes.

One judge per deployment: the worker whose status stage holds partition 0 of
custody-events. Any worker running the status stage has a watchdog, and the one
holding partition 0 judges; when the partition moves, the judge's metrics go
with it and its new holder takes up from what ``feed-status`` recorded. The
judge reads ``feed-counts`` (every status partition's counts, kept by
:mod:`savin.streams.status`) from the topic, so it sees every source whoever
holds the other partitions.

On a change it writes a :class:`~savin.schemas.safety.FeedStatusChange` to
``feed-status`` (the record of each source's downtime, kept without a time
limit) and logs it, a WARNING when a source turns stale or low. It keeps
``savin_feed_stale``, ``savin_feed_low`` and
``savin_feed_last_event_timestamp_seconds`` for each source, which the alert
rules watch.

A source named in ``SAVIN_FEED_SILENT_AFTER`` that has never sent anything is
judged once its threshold has passed since the judge took up: a new deployment
is not an outage, a source that never starts is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from savin import metrics
from savin.domain.feeds import FeedState, FeedStatus
from savin.ops.feeds import Seen, judge, latest_changes, merge
from savin.ops.reading import read_topic
from savin.schemas.safety import FeedCounts, FeedStatusChange
from savin.settings import Settings
from savin.streams.errors import fault
from savin.topics import Topics, producer

__all__ = ["FeedWatchdog"]

log = logging.getLogger("savin.feeds")

_GAUGES = (metrics.FEED_STALE, metrics.FEED_LOW, metrics.FEED_LAST_EVENT)


class FeedWatchdog(Service):
    """Judges every source while ``stage`` (the status stage) holds partition 0."""

    def __init__(self, settings: Settings, stage: Any, clock: Callable[[], float] = time.time, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self.topics = Topics(settings)
        self.stage = stage
        self.interval = settings.feed_check_interval
        self.thresholds = settings.feed_thresholds
        self._clock = clock
        self._judging = False
        self._since = 0.0  # when this worker took up judging
        self._states: dict[str, FeedStatusChange] = {}
        self._counts: dict[bytes, FeedCounts] = {}
        self._series: set[str] = set()
        self._reader: AIOKafkaConsumer | None = None
        self._producer = None
        self._task: asyncio.Task | None = None

    @property
    def judging(self) -> bool:
        """Whether this worker is the judge now."""
        return self._judging

    async def on_start(self) -> None:
        self._task = asyncio.ensure_future(self._check_on_a_timer())

    async def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()

    async def _check_on_a_timer(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.check()
            except (KafkaError, OSError, asyncio.TimeoutError) as e:
                log.warning("feeds not judged: %s", fault(e))
                await self._close()  # a fresh connection, and a fresh look at feed-status, next time
            except Exception:  # noqa: BLE001 - the watchdog must outlive a surprise
                log.exception("feeds not judged")
                await self._close()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def _holds_partition_0(self) -> bool:
        return self.stage.ready.is_set() and 0 in self.stage.stores

    async def check(self) -> None:
        """One look at every source, if this worker is the judge."""
        if not self._holds_partition_0():
            if self._judging:
                log.info("feed watchdog: partition 0 of the status stage moved; another worker judges the feeds")
                await self._close()
            return
        if not self._judging:
            await self._take_up()
        await self._read_counts()
        now = self._clock()
        seen = merge(self._counts.values())
        for source in sorted(set(seen) | set(self.thresholds.per_source) | set(self._states)):
            status = self._judge(source, seen.get(source), now)
            if status is not None:
                await self._note(source, seen.get(source), status, now)

    def _judge(self, source: str, seen: Seen | None, now: float) -> FeedStatus | None:
        silent_after = self.thresholds.silent_after(source)
        if (seen is None or seen.last_seen_at is None) and now - self._since <= silent_after:
            return None  # not heard from since the judge took up, and not yet for longer than the threshold
        return judge(seen, now, silent_after)

    async def _note(self, source: str, seen: Seen | None, status: FeedStatus, now: float) -> None:
        last = seen.last_seen_at if seen is not None else None
        metrics.FEED_STALE.labels(source=source).set(int(status.state is FeedState.STALE))
        metrics.FEED_LOW.labels(source=source).set(int(status.state is FeedState.LOW))
        if last is not None:
            metrics.FEED_LAST_EVENT.labels(source=source).set(last)
        self._series.add(source)
        before = self._states.get(source)
        if before is not None and before.state == status.state.value:
            return
        change = FeedStatusChange(source=source, state=status.state.value, reason=status.reason,
                                  last_event_at=_time(last), at=_time(now))  # type: ignore[arg-type]
        await self._producer.send_and_wait(self.topics.feed_status, change.model_dump_json().encode(),
                                           key=source.encode(), partition=0)
        self._states[source] = change
        if status.state is FeedState.OK:
            log.info("feed source=%s is ok%s", source, f" again (was {before.state})" if before else "")
        else:
            log.warning("feed source=%s is %s: %s", source, status.state.value, status.reason)

    async def _take_up(self) -> None:
        """Become the judge: the states recorded so far, and a reader of feed-counts from its start."""
        self._since = self._clock()
        self._states = latest_changes([FeedStatusChange.model_validate_json(r.value)
                                       async for r in read_topic(self.settings.kafka_bootstrap,
                                                                 self.topics.feed_status) if r.value])
        self._producer = producer(self.settings.kafka_bootstrap)
        await self._producer.start()
        self._reader = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False,
                                        auto_offset_reset="earliest", client_id="savin-feed-watchdog")
        await self._reader.start()
        tp = TopicPartition(self.topics.feed_counts, 0)
        self._reader.assign([tp])
        await self._reader.seek_to_beginning(tp)
        self._counts = {}
        self._judging = True
        log.info("feed watchdog judges the feeds (%d sources recorded)", len(self._states))

    async def _read_counts(self) -> None:
        """Everything written to feed-counts since the last look (the newest record per partition kept)."""
        tp = TopicPartition(self.topics.feed_counts, 0)
        end = (await self._reader.end_offsets([tp]))[tp]
        while await self._reader.position(tp) < end:
            got = await self._reader.getmany(tp, timeout_ms=1000, max_records=5000)
            for r in got.get(tp, []):
                if r.key is None:
                    continue
                if r.value is None:
                    self._counts.pop(r.key, None)
                    continue
                counts = FeedCounts.model_validate_json(r.value)
                if counts.partition < self.settings.partitions:
                    self._counts[r.key] = counts

    async def _close(self) -> None:
        """Stop judging: the metrics go (the next judge sets them), the connections close."""
        self._judging = False
        for source in self._series:
            for gauge in _GAUGES:
                try:
                    gauge.remove(source)
                except KeyError:
                    pass  # never set (no event seen)
        self._series = set()
        reader, self._reader = self._reader, None
        prod, self._producer = self._producer, None
        for closing in (reader, prod):
            if closing is not None:
                try:
                    await closing.stop()
                except (KafkaError, OSError, asyncio.TimeoutError):
                    pass  # the connection is gone either way


def _time(t: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc) if t is not None else None
