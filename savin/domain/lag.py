"""Consumer lag, in records and in seconds, and each partition's status judged
the way Burrow judges it.

Burrow (linkedin/Burrow, ``core/internal/evaluator/caching.go``,
``calculatePartitionStatus``; the wiki's "Consumer Lag Evaluation Rules")
keeps a sliding window of a group's last commits per partition, each with its
offset, its time and the lag then, and applies these rules in this order:

1. If the lag is zero now or at any commit in the window, the partition is OK.
2. **REWIND**: the committed offset went back from one commit to the next.
3. **STOP**: the time since the last commit is longer than the window's commits
   span (now - last commit > last commit - first commit): the consumer has
   stopped committing.
4. **STALL**: the committed offset is the same at every commit in the window:
   the consumer is there but does not move.
5. **WARN**: the offsets move, but the lag never goes down from one commit to
   the next: the consumer is falling behind.
6. Otherwise OK.

A group's status is the worst of its partitions' (:func:`group_status`), in
Burrow's order: OK < WARN < STOP < STALL < REWIND.

Where savin departs from Burrow, and why:

* Burrow reads every commit, with its time, from ``__consumer_offsets``; savin
  looks at the committed offsets every so often (an OffsetFetch, which carries
  no commit times). A look counts as a commit when the offset moved since the
  previous look, or when a live member of the group holds the partition (a
  consumer that is there commits again, as Burrow sees consumers that commit on
  a timer). Otherwise the last commit keeps its time and ages. So a partition
  that does not move is STOP when nobody live holds it, and STALL when a live
  consumer holds it.
* A window is judged only once it is full (:attr:`Tracker.size` looks). Burrow
  judges a partly filled ring too; from looks taken seconds apart that would
  call one slow batch between two looks a stall.
* A record that waits on purpose (a retry tier holds each notice for its
  tier's delay) is not lag until it is due: a look whose first record behind
  is not yet due counts as a look without lag.

Lag in seconds (the figure kafka-lag-exporter reports as time lag) is how long
the first record not yet committed has waited: now minus its record timestamp
(minus the topic's delay for a retry tier), 0 when nothing is behind.
kafka-lag-exporter estimates that time by interpolating the log-end offset's
growth between its looks; savin reads the record itself, which is exact from
the first look (``savin lag`` has no history, and a worker restarted behind a
backlog would report about 0 until its history covered the backlog) for one
small fetch per lagging partition. It trusts producers' record timestamps:
savin's own producers stamp the send time; an upstream producer's wrong clock
skews ``custody-events``' figure (never below 0).

Nothing here touches Kafka; times are Unix seconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import pairwise

__all__ = ["Status", "Look", "Sample", "PartitionLag", "GroupLag", "Tracker", "WINDOW", "partition_status",
           "group_status", "why"]

#: Looks in a window (Burrow's ``intervals`` default).
WINDOW = 10


class Status(IntEnum):
    """Burrow's partition and group statuses, in its order of severity."""

    OK = 0
    WARN = 1
    STOP = 2
    STALL = 3
    REWIND = 4


@dataclass(frozen=True)
class Look:
    """One partition of one group, as Kafka showed it at one moment."""

    group: str
    topic: str
    partition: int
    #: The group's committed offset (the next record to consume); None if it never committed one.
    committed: int | None
    #: The partition's log start and log-end offsets.
    start: int
    end: int
    #: When the first record not yet committed was produced; None if nothing is behind or it was not read.
    head_at: float | None = None
    #: A live member of the group holds the partition (so a look at it counts as a commit).
    live: bool = False
    #: Seconds every record of this topic waits on purpose before it is due (a retry tier's delay).
    delay: float = 0.0

    @property
    def position(self) -> int:
        """Where the group resumes: its commit, or the log start when it has none (or retention passed it)."""
        return self.start if self.committed is None else max(self.committed, self.start)

    @property
    def lag(self) -> int:
        return max(0, self.end - self.position)


@dataclass(frozen=True)
class Sample:
    """One look as the window keeps it."""

    at: float
    offset: int
    lag: int
    #: When this offset was last committed, as far as the looks can tell.
    committed_at: float
    #: The first record behind is not due yet: the consumer waits on purpose.
    held: bool = False

    @property
    def caught_up(self) -> bool:
        return self.lag == 0 or self.held


def partition_status(window: Sequence[Sample], now: float, size: int = WINDOW) -> Status:
    """Burrow's rules (the module docstring) over a partition's window, oldest look first."""
    if len(window) < size or any(s.caught_up for s in window):
        return Status.OK
    first, last = window[0], window[-1]
    if any(b.offset < a.offset for a, b in pairwise(window)):
        return Status.REWIND
    if now - last.committed_at > last.committed_at - first.committed_at:
        return Status.STOP
    if all(s.offset == first.offset for s in window):
        return Status.STALL
    if all(b.lag >= a.lag for a, b in pairwise(window)):
        return Status.WARN
    return Status.OK


def why(status: Status, window: Sequence[Sample], now: float) -> str | None:
    """The status in words, with the figures behind it; None for OK."""
    if status is Status.OK:
        return None
    first, last = window[0], window[-1]
    if status is Status.REWIND:
        a, b = next((a, b) for a, b in pairwise(window) if b.offset < a.offset)
        return f"the committed offset went back from {a.offset} to {b.offset}"
    if status is Status.STOP:
        return f"no commit for {now - last.committed_at:.0f} s with {last.lag} records behind"
    if status is Status.STALL:
        return f"the committed offset stayed at {last.offset} for {now - first.at:.0f} s with {last.lag} records behind"
    return f"the lag did not go down in {now - first.at:.0f} s ({first.lag} to {last.lag} records)"


def group_status(statuses: Iterable[Status]) -> Status:
    """A group is as bad as its worst partition."""
    return max(statuses, default=Status.OK)


@dataclass(frozen=True)
class PartitionLag:
    """A partition's lag and status after a look."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    #: None when the first record behind could not be read.
    seconds: float | None
    status: Status
    reason: str | None = None


@dataclass(frozen=True)
class GroupLag:
    """A group's partitions after a look; its status is the worst of theirs."""

    group: str
    partitions: list[PartitionLag] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return group_status(p.status for p in self.partitions)

    @property
    def worst(self) -> PartitionLag | None:
        """The partition that gives the group its status (None while all are OK)."""
        bad = [p for p in self.partitions if p.status is not Status.OK]
        return max(bad, key=lambda p: (p.status, p.lag)) if bad else None


class Tracker:
    """The windows of the partitions being watched; each look slides them on.

    A partition missing from a look has moved elsewhere (or is no longer
    watched): its window is dropped, and a later look starts it afresh.
    """

    def __init__(self, size: int = WINDOW):
        if size < 2:
            raise ValueError("a window needs at least two looks")
        self.size = size
        self._windows: dict[tuple[str, str, int], deque[Sample]] = {}

    def observe(self, now: float, looks: Iterable[Look]) -> list[PartitionLag]:
        windows: dict[tuple[str, str, int], deque[Sample]] = {}
        rows = []
        for look in looks:
            key = (look.group, look.topic, look.partition)
            window = self._windows.get(key) or deque(maxlen=self.size)
            window.append(_sample(look, window[-1] if window else None, now))
            windows[key] = window
            status = partition_status(window, now, self.size)
            last = window[-1]
            rows.append(PartitionLag(look.group, look.topic, look.partition, look.committed, look.end, last.lag,
                                     _seconds(look, last, now), status, why(status, window, now)))
        self._windows = windows
        return rows


def _sample(look: Look, previous: Sample | None, now: float) -> Sample:
    offset, lag = look.position, look.lag
    committed = previous is None or offset != previous.offset or look.live
    held = lag > 0 and look.delay > 0 and look.head_at is not None and now < look.head_at + look.delay
    return Sample(now, offset, lag, now if committed else previous.committed_at, held)


def _seconds(look: Look, sample: Sample, now: float) -> float | None:
    if sample.caught_up:
        return 0.0
    if look.head_at is None:
        return None
    return max(0.0, now - look.head_at - look.delay)
