"""Each stage group's lag and status as ``savin lag`` and the console show them:
every partition of every input topic, looked at from outside the group and
judged by Burrow's rules (:mod:`savin.domain.lag`). ``savin lag`` takes a few
looks in a row (:func:`stage_lag`); the console's lag watch looks on a timer
for as long as the web process runs; both look with :func:`look_at_stages`.

A partition counts as held by a live consumer when a member of the group holds
it in the group's current assignment (DescribeGroups); one that nobody holds
and that does not move while records wait is STOP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from savin.domain.lag import GroupLag, Tracker
from savin.ops.reading import OffsetWatch
from savin.settings import Settings
from savin.topics import Topics

__all__ = ["stage_lag", "look_at_stages"]


async def look_at_stages(watch: OffsetWatch, topics: Topics, stages: Iterable[str], tracker: Tracker,
                         now: float) -> dict[str, GroupLag]:
    """One look at every partition of each of ``stages``' inputs, held or not, slid into
    ``tracker``'s windows; each stage's judgement, by stage name. A topic not yet created
    has no partitions to look at (and is looked for again next time)."""
    stages = list(stages)
    seen = []
    for stage in stages:
        group = topics.group(stage)
        inputs = [tp for topic in topics.stage_inputs(stage) for tp in await watch.partitions(topic)]
        held = await watch.holders(group)
        seen.extend(await watch.look(group, inputs, held, topics.retry_delays))
    rows = tracker.observe(now, seen)
    return {stage: GroupLag(topics.group(stage), [r for r in rows if r.group == topics.group(stage)])
            for stage in stages}


async def stage_lag(settings: Settings, stages: Iterable[str], looks: int, every: float,
                    progress: Callable[[int], None] | None = None,
                    clock: Callable[[], float] = time.time) -> dict[str, GroupLag]:
    """``looks`` looks, ``every`` seconds apart, at each of ``stages``' groups; the
    judgement after the last one, by stage name."""
    topics = Topics(settings)
    stages = list(stages)
    tracker = Tracker(looks)
    groups: dict[str, GroupLag] = {}
    async with OffsetWatch(settings.kafka_bootstrap) as watch:
        for n in range(looks):
            started = time.monotonic()
            groups = await look_at_stages(watch, topics, stages, tracker, clock())
            if progress is not None:
                progress(n + 1)
            if n + 1 < looks:
                await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))
    return groups
