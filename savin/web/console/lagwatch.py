"""The console's view of consumer lag: every ``SAVIN_LAG_INTERVAL`` seconds the
web process looks at every stage group's input partitions, held or not, as
``savin lag`` does (:func:`savin.ops.lag.look_at_stages`), and keeps the
judgements by Burrow's rules over the last looks (:mod:`savin.domain.lag`).

Unlike the worker's monitor, which reports only the partitions its own stages
hold, this sees the whole group from outside: a stage that no worker runs shows
STOP here while records wait. Throughput is the records each group committed
between two looks, per second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from savin.domain.lag import GroupLag, Tracker
from savin.ops.lag import look_at_stages
from savin.ops.reading import OffsetWatch
from savin.settings import STAGES, Settings
from savin.streams.errors import fault
from savin.topics import Topics

__all__ = ["LagWatch", "STAGE_ORDER"]

log = logging.getLogger("savin.web.console.lag")

#: The stages in the order of the pipeline.
STAGE_ORDER = tuple(s for s in ("match", "deliver", "status") if s in STAGES)


class LagWatch:
    """Looks at every stage group on a timer; :meth:`run` never raises (but is cancellable)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.bootstrap = settings.kafka_bootstrap
        self.interval = settings.lag_interval
        self.topics = Topics(settings)
        self.stages = STAGE_ORDER
        self._clock = clock
        self._tracker = Tracker()
        self._watch: OffsetWatch | None = None
        self._previous: tuple[float, dict[str, dict[tuple[str, int], int]]] | None = None
        #: The latest judgement of each stage's group, by stage name ({} before the first look).
        self.groups: dict[str, GroupLag] = {}
        #: Records each stage's group committed per second between the last two looks.
        self.throughput: dict[str, float] = {}
        self.looked_at: datetime | None = None
        #: Looks that failed (Kafka unreachable, a coordinator moving) since this watch began.
        self.failures = 0

    async def run(self) -> None:
        """Look every ``interval`` seconds for ever; a failed look is logged and tried again next time."""
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.look()
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - the watch must outlive Kafka's faults and surprises
                    self.failures += 1
                    log.warning("consumer lag not read (retrying in %.1f s): %s", self.interval, fault(e))
                    await self._close()  # a fresh connection next time
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            await self._close()

    async def look(self) -> None:
        """One look at every stage group."""
        if self._watch is None:
            self._watch = await OffsetWatch(self.bootstrap).__aenter__()
        now = self._clock()
        groups = await look_at_stages(self._watch, self.topics, self.stages, self._tracker, now)
        # Where each group resumes (its commit, or the log start before its first one).
        positions = {stage: {(p.topic, p.partition): p.end - p.lag for p in g.partitions}
                     for stage, g in groups.items()}
        if self._previous is not None and now > self._previous[0]:
            then, before = self._previous
            self.throughput = {stage: committed_since(before.get(stage, {}), positions[stage]) / (now - then)
                               for stage in groups}
        self._previous = (now, positions)
        self.groups = groups
        self.looked_at = datetime.fromtimestamp(now, UTC)

    async def _close(self) -> None:
        if self._watch is not None:
            watch, self._watch = self._watch, None
            try:
                await watch.__aexit__()
            except Exception:  # noqa: BLE001 - the connection is gone either way
                pass


def committed_since(before: dict[tuple[str, int], int], now: dict[tuple[str, int], int]) -> int:
    """Records committed between two looks, over the partitions both saw (a rewind counts 0)."""
    return sum(max(0, offset - before[tp]) for tp, offset in now.items() if tp in before)
