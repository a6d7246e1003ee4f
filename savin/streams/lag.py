"""The worker's lag monitor: every ``SAVIN_LAG_INTERVAL`` seconds it looks at
the stage groups this worker runs, from outside the groups (committed offsets,
log-end offsets, the first record behind), and judges each partition by
Burrow's rules (:mod:`savin.domain.lag`).

It reports the partitions this worker's stages hold, and only those: each
partition's lag is exported by exactly one worker, a partition that moves takes
its series with it (they are removed here and set by its new holder), and an
idle partition is reported like a busy one. A look counts as a commit of a
partition when the stage made progress since the previous look (its loop
committed, or found nothing to commit): a stage that is stuck inside a batch
ages towards STOP, a stage whose loop turns while a partition does not move
shows STALL.

``/readyz`` reads :attr:`LagMonitor.groups`: a stage group in STOP or STALL
makes the worker not ready (:mod:`savin.web.health`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka.errors import KafkaError
from mode import Service

from savin import metrics
from savin.domain.lag import GroupLag, PartitionLag, Tracker
from savin.ops.reading import OffsetWatch
from savin.settings import Settings
from savin.streams.errors import fault
from savin.topics import Topics

__all__ = ["LagMonitor"]

log = logging.getLogger("savin.lag")

_GAUGES = (metrics.CONSUMER_LAG_RECORDS, metrics.CONSUMER_LAG_SECONDS, metrics.CONSUMER_STATUS)


class LagMonitor(Service):
    """Looks at each stage's group on a timer, sets the consumer gauges and keeps
    each group's latest judgement in :attr:`groups` (by stage name)."""

    def __init__(self, settings: Settings, stages: Iterable[Any], clock: Callable[[], float] = time.time,
                 **kwargs: Any):
        super().__init__(**kwargs)
        topics = Topics(settings)
        self.bootstrap = settings.kafka_bootstrap
        self.interval = settings.lag_interval
        self.stages = list(stages)
        self.delays = topics.retry_delays
        self._retries = set(topics.retries)
        self._group = {s.name: topics.group(s.name) for s in self.stages}
        self._prefix = settings.namespace + "."
        self._clock = clock
        self._trackers = {s.name: Tracker() for s in self.stages}
        self._progress: dict[str, float] = {}  # stage -> its last_progress at the previous look
        self._series: dict[str, set[tuple[str, ...]]] = {s.name: set() for s in self.stages}
        #: The latest judgement of each stage's group, over the partitions this worker holds.
        self.groups: dict[str, GroupLag] = {}
        self._watch: OffsetWatch | None = None
        self._task: asyncio.Task | None = None

    async def on_start(self) -> None:
        self._task = asyncio.ensure_future(self._look_on_a_timer())

    async def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()

    async def _look_on_a_timer(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.look()
            except (KafkaError, OSError, asyncio.TimeoutError) as e:
                log.warning("consumer lag not read: %s", fault(e))
                await self._close()  # a fresh connection next time
            except Exception:  # noqa: BLE001 - the monitor must outlive a surprise
                log.exception("consumer lag not read")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _close(self) -> None:
        if self._watch is not None:
            watch, self._watch = self._watch, None
            try:
                await watch.__aexit__()
            except (KafkaError, OSError, asyncio.TimeoutError):
                pass  # the connection is gone either way

    async def look(self) -> None:
        """One look at every stage that holds its partitions (a stage restoring is skipped)."""
        if self._watch is None:
            self._watch = await OffsetWatch(self.bootstrap).__aenter__()
        for stage in self.stages:
            if not stage.ready.is_set():
                continue
            held = set(stage.consumer.assignment())
            turned = self._progress.get(stage.name) != stage.last_progress
            self._progress[stage.name] = stage.last_progress
            group = self._group[stage.name]
            looks = await self._watch.look(group, held, held if turned else (), self.delays)
            rows = self._trackers[stage.name].observe(self._clock(), looks)
            self._export(stage.name, rows)
            self.groups[stage.name] = GroupLag(group, rows)
        self.groups = {s.name: self.groups[s.name] for s in self.stages if s.name in self.groups}  # in stage order

    def _export(self, stage: str, rows: list[PartitionLag]) -> None:
        now = set()
        for row in rows:
            labels = (stage, row.group, row.topic.removeprefix(self._prefix), str(row.partition))
            now.add(labels)
            metrics.CONSUMER_LAG_RECORDS.labels(*labels).set(row.lag)
            if row.seconds is not None:
                metrics.CONSUMER_LAG_SECONDS.labels(*labels).set(row.seconds)
            metrics.CONSUMER_STATUS.labels(*labels).set(int(row.status))
        for labels in self._series[stage] - now:
            for gauge in _GAUGES:
                gauge.remove(*labels)
        self._series[stage] = now
        if stage == "deliver":
            # What waits on a retry tier is its lag: the deliver stage commits up to the first notice not yet due.
            backlog = dict.fromkeys(sorted(self._retries), 0)
            for row in rows:
                if row.topic in backlog:
                    backlog[row.topic] += row.lag
            for topic, waiting in backlog.items():
                metrics.RETRY_BACKLOG.labels(tier=topic.removeprefix(self._prefix)).set(waiting)
