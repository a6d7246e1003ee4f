"""Provider rate limits: each (channel, sender) sends at most its share of the
configured rate, urgent notices first, slowing down when the provider says
"too many".

* :func:`share` is the part of a limit one worker owns: its partitions of the
  notice topics over all of them, so the group's sum never exceeds the limit
  without anyone coordinating (``docs/architecture.md``, *Rate limits*).
* :class:`Schedule` is the pure rule, on a clock it is given: at most ``n``
  sends in any window of ``(1 + margin)`` seconds (one send per ``1/rate``
  seconds below one a second), never two closer than ``1 / (smoothing * rate)``.
  A window rather than fixed slots, so that a pause between two batches is made
  up afterwards instead of lost, while no second ever holds more than the limit.
  A 429 halves the rate (once per window, however many sends were in flight) and
  honours Retry-After; the rate then grows back by ``recover`` of the limit each
  second (AIMD).
* :class:`Pacer` makes senders wait for the schedule, urgent ones before
  routine ones; routine senders wait, they are never refused.
* :class:`Pacing` holds one pacer per channel and re-shares them on a rebalance.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from savin import metrics

__all__ = ["share", "Schedule", "Pacer", "Pacing", "Budget", "ROUTINE_HORIZON"]

#: Seconds of sending a routine batch may hold: the deliver stage takes no more routine
#: notices into a batch than their pacer sends in this time, so an urgent notice that
#: arrives meanwhile waits at most about this long for the next batch.
ROUTINE_HORIZON = 0.5


def share(assigned: int, partitions: int) -> float:
    """The part of each limit a worker holding ``assigned`` of ``partitions`` notice
    partitions owns. Partitions are never held twice, so the shares sum to at most 1.
    A worker holding none owns none; it sends nothing (its pacers keep the smallest share)."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    return max(0, min(assigned, partitions)) / partitions


class Schedule:
    """When the next send may go, for one sender's share (pure; times in seconds)."""

    def __init__(self, limit: float, *, margin: float = 0.02, smoothing: float = 2.0, recover: float = 0.1,
                 floor: float = 1 / 64):
        if limit <= 0:
            raise ValueError("the rate limit must be positive")
        self.limit = limit
        self.margin, self.smoothing, self.recover, self.floor = margin, smoothing, recover, floor
        self._backoff: float | None = None  # the rate right after the last 429
        self._slowed_at = -math.inf
        self._paused_until = -math.inf
        self._sent: deque[float] = deque()

    def set_limit(self, limit: float) -> None:
        """A new share of the limit (after a rebalance); a back-off in force is kept in proportion."""
        if limit <= 0:
            raise ValueError("the rate limit must be positive")
        if self._backoff is not None:
            self._backoff *= limit / self.limit
        self.limit = limit

    def rate(self, now: float) -> float:
        """Sends a second allowed now: the limit, or less while recovering from a 429."""
        if self._backoff is None:
            return self.limit
        rate = self._backoff + self.limit * self.recover * max(0.0, now - self._slowed_at)
        if rate >= self.limit:
            self._backoff = None
            return self.limit
        return rate

    @property
    def slowed(self) -> bool:
        """Whether the rate is below the limit after a 429 (until it has grown back)."""
        return self._backoff is not None

    def window(self, now: float) -> tuple[int, float]:
        """``(n, seconds)``: at most ``n`` sends in any window of that many seconds."""
        rate = self.rate(now)
        if rate >= 1:
            return int(rate), 1.0 + self.margin
        return 1, (1.0 + self.margin) / rate

    def next_at(self, now: float) -> float:
        """The earliest time (``>= now``) the next send may go."""
        n, span = self.window(now)
        at = max(now, self._paused_until)
        if self._sent:
            at = max(at, self._sent[-1] + span / n / self.smoothing)
        if len(self._sent) >= n:
            at = max(at, self._sent[-n] + span)
        return at

    def take(self, now: float) -> None:
        """A send goes at ``now`` (call it when :meth:`next_at` allows)."""
        self._sent.append(now)
        keep = int(self.limit) + 1
        while len(self._sent) > keep:
            self._sent.popleft()

    def too_many(self, now: float, retry_after: float | None = None) -> None:
        """The provider refused a send as too many: halve the rate, at most once a window
        (the sends in flight when it first said so say the same), and wait ``retry_after``."""
        if retry_after is not None and retry_after > 0:
            self._paused_until = max(self._paused_until, now + retry_after)
        _, span = self.window(now)
        if self._backoff is not None and now - self._slowed_at < span:
            return
        self._backoff = max(self.limit * self.floor, self.rate(now) / 2)
        self._slowed_at = now


class Pacer:
    """Senders of one (channel, sender) wait here for the :class:`Schedule`; the next
    send allowed goes to the longest-waiting urgent sender, else the longest-waiting routine one."""

    def __init__(self, channel: str, sender: str, limit: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep, **schedule):
        self.channel, self.sender = channel, sender
        #: The configured limit for the whole group; this worker owns ``share`` of it.
        self.configured = limit
        self.share = 1.0
        self.schedule = Schedule(limit, **schedule)
        self._clock, self._sleep = clock, sleep
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task | None = None
        self._export()

    @property
    def waiting(self) -> int:
        return sum(1 for *_, f in self._waiters if not f.done())

    def set_share(self, part: float) -> None:
        """Own ``part`` of the configured limit (a worker holding no partition keeps a sliver)."""
        self.share = part
        self.schedule.set_limit(self.configured * max(part, 1e-3))
        self._export()

    async def acquire(self, urgent: bool) -> None:
        """Wait until this sender may send once."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (0 if urgent else 1, next(self._order), future))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.ensure_future(self._drive())
        await future

    async def _drive(self) -> None:
        while self._waiters:
            now = self._clock()
            at = self.schedule.next_at(now)
            if at > now:
                await self._sleep(at - now)
                continue
            *_, future = heapq.heappop(self._waiters)
            if future.done():  # its sender was cancelled
                continue
            self.schedule.take(now)
            future.set_result(None)

    def too_many(self, retry_after: float | None = None) -> None:
        """The provider said "too many" (HTTP 429, Twilio 20429, SMTP 421/451)."""
        metrics.PROVIDER_RATE_LIMITED.labels(channel=self.channel, sender=self.sender).inc()
        self.schedule.too_many(self._clock(), retry_after)
        self._export()

    def room(self, horizon: float) -> int:
        """Sends this pacer can make within ``horizon`` seconds, beyond those already waiting."""
        return max(0, math.floor(self.schedule.rate(self._clock()) * horizon) - self.waiting)

    def _export(self) -> None:
        metrics.PROVIDER_RATE.labels(channel=self.channel, sender=self.sender).set(
            self.schedule.rate(self._clock()))

    def sent(self) -> None:
        """A send went through: the exported rate follows the recovery."""
        if self.schedule.slowed:
            self._export()


class Budget:
    """How many more sends a batch may take per channel (:meth:`Pacing.budget`);
    a channel without a pacer is not limited."""

    def __init__(self, room: Mapping[str, int]):
        self._room = dict(room)

    def fits(self, channel: str) -> bool:
        return self._room.get(channel, 1) > 0

    def take(self, channel: str) -> None:
        if channel in self._room:
            self._room[channel] -= 1


class Pacing:
    """One :class:`Pacer` per channel; the dispatcher waits on the one of each send."""

    def __init__(self, pacers: list[Pacer]):
        self.pacers = {p.channel: p for p in pacers}

    def for_channel(self, channel: str) -> Pacer | None:
        return self.pacers.get(channel)

    def share(self, assigned: int, partitions: int) -> None:
        """Own the share of every limit that ``assigned`` of ``partitions`` partitions give."""
        part = share(assigned, partitions)
        for pacer in self.pacers.values():
            pacer.set_share(part)

    def budget(self, horizon: float = ROUTINE_HORIZON) -> Budget:
        """What each channel can send in the next ``horizon`` seconds (at least one)."""
        return Budget({c: max(1, p.room(horizon)) for c, p in self.pacers.items()})
