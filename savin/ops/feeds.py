"""Each upstream source's freshness, read from the feed watchdog's topics.

The status stage counts each source's events per partition and shares them on
``feed-counts`` (:class:`~savin.schemas.safety.FeedCounts`, one record per
status partition); the watchdog (:mod:`savin.streams.watchdog`) judges the
sources from the sum of those and records each change of a source's state on
``feed-status``. This module reads both:

* :func:`merge` sums the partitions' counts into one :class:`Seen` per source,
  and :func:`judge` applies the rule of :mod:`savin.domain.feeds` to one, which
  is what the watchdog does on its timer;
* :func:`read_feeds` is one :class:`Feed` row per source (``savin feeds``);
* :func:`read_feed_changes` is the recorded changes as
  :class:`~savin.domain.feeds.StatusChange` s, for the statistics' downtime
  hours (:func:`savin.domain.feeds.downtime_hours`);
* :class:`FeedView` keeps both topics in the web's views (the console's feeds
  page and API, the portal's "data from this source as of").

Times are those at which savin received the records (their Kafka timestamps),
not the ``occurred_at`` the source wrote: a source that replays last week's
events is alive, and one whose clock is wrong is judged by savin's.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from savin.domain.feeds import USUAL_HOURS, FeedState, FeedStatus, StatusChange, Thresholds, feed_status, usual_rate
from savin.ops.reading import read_topic
from savin.schemas.safety import FeedCounts, FeedStatusChange
from savin.settings import Settings
from savin.topics import Topics

__all__ = ["Seen", "Feed", "merge", "events_last_hour", "complete_hours", "judge", "feeds", "latest_changes",
           "read_feeds", "read_feed_changes", "FeedView", "stored_feeds", "change_as_status_change"]

HOUR = 3600


@dataclass
class Seen:
    """One source as all the status partitions together saw it (Unix seconds)."""

    last_event_at: float | None = None
    last_heartbeat_at: float | None = None
    #: Unix hour -> events (heartbeats not counted).
    hourly: dict[int, int] = field(default_factory=dict)

    @property
    def last_seen_at(self) -> float | None:
        """The newest event or heartbeat: what says the source is alive."""
        times = [t for t in (self.last_event_at, self.last_heartbeat_at) if t is not None]
        return max(times) if times else None


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def merge(counts: Iterable[FeedCounts]) -> dict[str, Seen]:
    """Every partition's counts summed per source: the newest times, the hours added up."""
    merged: dict[str, Seen] = defaultdict(Seen)
    for c in counts:
        for source, sc in c.sources.items():
            seen = merged[source]
            seen.last_event_at = _later(seen.last_event_at, sc.last_event_at and sc.last_event_at.timestamp())
            seen.last_heartbeat_at = _later(seen.last_heartbeat_at,
                                            sc.last_heartbeat_at and sc.last_heartbeat_at.timestamp())
            for hour, n in sc.hourly.items():
                seen.hourly[int(hour)] = seen.hourly.get(int(hour), 0) + n
    return dict(merged)


def events_last_hour(hourly: dict[int, int], now: float) -> int:
    """Events in the hour before ``now``: this hour's so far, and the part of the previous
    hour's that falls within the last 60 minutes (its events taken as spread evenly)."""
    hour = int(now // HOUR)
    elapsed = (now - hour * HOUR) / HOUR
    return round(hourly.get(hour, 0) + hourly.get(hour - 1, 0) * (1 - elapsed))


def complete_hours(hourly: dict[int, int], now: float) -> list[int]:
    """The counts of the complete hours since the source was first counted (at most a week),
    oldest first, hours without an event as 0."""
    if not hourly:
        return []
    hour = int(now // HOUR)
    first = max(min(hourly), hour - USUAL_HOURS)
    return [hourly.get(h, 0) for h in range(first, hour)]


def judge(seen: Seen | None, now: float, silent_after: int) -> FeedStatus:
    """The rule of :func:`savin.domain.feeds.feed_status` applied to one source's counts."""
    if seen is None:
        return feed_status(now, None, 0, None, silent_after)
    return feed_status(now, seen.last_seen_at, events_last_hour(seen.hourly, now),
                       usual_rate(complete_hours(seen.hourly, now)), silent_after)


def _time(t: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc) if t is not None else None


@dataclass(frozen=True)
class Feed:
    """One source: the watchdog's latest verdict, and what the counts say now."""

    source: str
    #: ``ok``, ``stale`` or ``low`` as the watchdog last recorded it; ``unknown`` before its first verdict.
    state: str
    reason: str | None
    #: When the watchdog recorded that state.
    since: dt.datetime | None
    last_event_at: dt.datetime | None
    last_heartbeat_at: dt.datetime | None
    #: The newest event or heartbeat: the time the source's data is as of.
    last_seen_at: dt.datetime | None
    events_last_hour: int
    usual_per_hour: float | None
    silent_after: int

    @property
    def alerting(self) -> bool:
        return self.state in (FeedState.STALE.value, FeedState.LOW.value)

    def as_dict(self) -> dict:
        iso = lambda t: t.isoformat() if t is not None else None  # noqa: E731
        return {"source": self.source, "state": self.state, "reason": self.reason, "since": iso(self.since),
                "last_event_at": iso(self.last_event_at), "last_heartbeat_at": iso(self.last_heartbeat_at),
                "last_seen_at": iso(self.last_seen_at), "events_last_hour": self.events_last_hour,
                "usual_per_hour": self.usual_per_hour, "silent_after": self.silent_after}


def latest_changes(changes: Iterable[FeedStatusChange]) -> dict[str, FeedStatusChange]:
    """The newest change of each source (in topic order: the last one written wins)."""
    return {c.source: c for c in changes}


def feeds(counts: Iterable[FeedCounts], latest: dict[str, FeedStatusChange], thresholds: Thresholds,
          now: float) -> list[Feed]:
    """One row per source that was counted, has a recorded state or has a threshold of its own,
    by name."""
    seen = merge(counts)
    rows = []
    for source in sorted(set(seen) | set(latest) | set(thresholds.per_source)):
        s = seen.get(source, Seen())
        change = latest.get(source)
        rows.append(Feed(
            source=source, state=change.state if change else "unknown", reason=change.reason if change else None,
            since=change.at if change else None, last_event_at=_time(s.last_event_at),
            last_heartbeat_at=_time(s.last_heartbeat_at), last_seen_at=_time(s.last_seen_at),
            events_last_hour=events_last_hour(s.hourly, now), usual_per_hour=usual_rate(complete_hours(s.hourly, now)),
            silent_after=thresholds.silent_after(source)))
    return rows


async def _latest_counts(settings: Settings) -> list[FeedCounts]:
    topics = Topics(settings)
    by_key: dict[bytes, FeedCounts] = {}
    async for r in read_topic(settings.kafka_bootstrap, topics.feed_counts):
        if r.key is None:
            continue
        if r.value is None:
            by_key.pop(r.key, None)
        else:
            by_key[r.key] = FeedCounts.model_validate_json(r.value)
    return [c for c in by_key.values() if c.partition < settings.partitions]


async def _changes(settings: Settings) -> list[FeedStatusChange]:
    return [FeedStatusChange.model_validate_json(r.value)
            async for r in read_topic(settings.kafka_bootstrap, Topics(settings).feed_status) if r.value]


async def read_feeds(settings: Settings, now: dt.datetime | None = None) -> list[Feed]:
    """Every source's row, from ``feed-counts`` and ``feed-status`` as they are now."""
    at = (now or dt.datetime.now(dt.timezone.utc)).timestamp()
    return feeds(await _latest_counts(settings), latest_changes(await _changes(settings)), settings.feed_thresholds,
                 at)


def change_as_status_change(c: FeedStatusChange) -> StatusChange:
    """A recorded change as the downtime rule takes it: a source went down when its last
    event came (the silence began then, not when the threshold passed), and came back with
    the event that ended the silence."""
    state = FeedState(c.state)
    at = c.at
    if state is not FeedState.LOW and c.last_event_at is not None:
        at = c.last_event_at
    return StatusChange(c.source, at.timestamp(), state)


def _seconds(t: dt.datetime | float) -> float:
    return t.timestamp() if isinstance(t, dt.datetime) else float(t)


async def read_feed_changes(settings: Settings, start: dt.datetime | float,
                            end: dt.datetime | float) -> list[StatusChange]:
    """The recorded changes of every source that bear on [start, end): each change before
    ``end``, those before ``start`` included (they say what state the period begins in).
    ``downtime_hours(changes, start, end)`` gives the hours each source was stale."""
    stop = _seconds(end)
    del start  # every earlier change matters: a source stale since last month is down all of this one
    return [s for s in map(change_as_status_change, await _changes(settings)) if s.at < stop]


_COUNTS = b"feeds:c:"  # + "p<partition>" -> FeedCounts JSON
_STATUS = b"feeds:s:"  # + source -> its latest FeedStatusChange JSON


class FeedView:
    """``feed-counts`` and ``feed-status`` kept in a web process's views."""

    def __init__(self, topics: Topics, thresholds: Thresholds):
        self.topics = topics
        self.thresholds = thresholds
        self.views = None

    def attach(self, views) -> None:
        """Follow both topics in ``views`` (before they run)."""
        self.views = views
        views.follow(self.topics.feed_counts, self._apply_counts)
        views.follow(self.topics.feed_status, self._apply_status)

    @staticmethod
    def _apply_counts(puts: dict, key: bytes, value: bytes | None) -> None:
        if value is not None:
            FeedCounts.model_validate_json(value)
        puts[_COUNTS + key] = value

    @staticmethod
    def _apply_status(puts: dict, key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        change = FeedStatusChange.model_validate_json(value)
        puts[_STATUS + change.source.encode()] = value

    def feeds(self, now: dt.datetime | None = None) -> list[Feed]:
        return stored_feeds(self.views.store, self.thresholds, now) if self.views is not None else []


def stored_feeds(store, thresholds: Thresholds, now: dt.datetime | None = None) -> list[Feed]:
    """Every source's row from a view store a :class:`FeedView` keeps (empty when none does)."""
    counts = [FeedCounts.model_validate_json(v) for _, v in store.scan(_COUNTS) if v is not None]
    latest = {c.source: c for c in (FeedStatusChange.model_validate_json(v) for _, v in store.scan(_STATUS))}
    at = (now or dt.datetime.now(dt.timezone.utc)).timestamp()
    return feeds(counts, latest, thresholds, at)
