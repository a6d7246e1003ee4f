"""Each stage group's lag and status as ``savin lag`` shows them: every
partition of every input topic, looked at from outside the group a few times
in a row and judged by Burrow's rules (:mod:`savin.domain.lag`).

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

__all__ = ["stage_lag"]


async def stage_lag(settings: Settings, stages: Iterable[str], looks: int, every: float,
                    progress: Callable[[int], None] | None = None,
                    clock: Callable[[], float] = time.time) -> dict[str, GroupLag]:
    """``looks`` looks, ``every`` seconds apart, at each of ``stages``' groups; the
    judgement after the last one, by stage name."""
    topics = Topics(settings)
    stages = list(stages)
    tracker = Tracker(looks)
    rows = []
    async with OffsetWatch(settings.kafka_bootstrap) as watch:
        inputs = {stage: [tp for topic in topics.stage_inputs(stage) for tp in await watch.partitions(topic)]
                  for stage in stages}
        for n in range(looks):
            started = time.monotonic()
            seen = []
            for stage in stages:
                group = topics.group(stage)
                held = await watch.holders(group)
                seen.extend(await watch.look(group, inputs[stage], held, topics.retry_delays))
            rows = tracker.observe(clock(), seen)
            if progress is not None:
                progress(n + 1)
            if n + 1 < looks:
                await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))
    return {stage: GroupLag(topics.group(stage), [r for r in rows if r.group == topics.group(stage)])
            for stage in stages}
