"""The feed watchdog: is each upstream source still sending?

Why: in Kentucky, jail feeds to VINE broke for weeks to months and nobody told
the victims that notices had stopped. A silent feed looks exactly like a quiet
week, so savin judges every source on two signs:

* **stale**: no event (heartbeats included: a ``HEARTBEAT`` says the source is
  alive) for longer than the source's threshold (:class:`Thresholds`, from a
  setting such as ``mo-doc-oms=900,default=3600``).
* **low**: events still come (perhaps only heartbeats), but the events per hour
  are far below the source's usual rate: under ``low_share`` (10 %) of it. Only
  judged when the usual rate is at least ``min_usual`` (10) events an hour, so
  a small jail's quiet night is not an alarm. Heartbeats are not counted here:
  a heartbeat process that lives on while the extract behind it died is the
  failure this sign is for.

The usual rate is the median of the last hours' counts (:func:`usual_rate`):
a burst (a mass change) or one dead hour barely moves a median, where a mean
would swing with it.

Downtime for the statistics (:func:`downtime`) is the time each source spent
stale within a period, from its recorded status changes.

Times are Unix seconds; nothing here touches Kafka or a clock.
"""

from __future__ import annotations

import enum
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["FeedState", "FeedStatus", "Thresholds", "DEFAULT_SILENT_AFTER", "parse_thresholds", "usual_rate",
           "feed_status", "StatusChange", "downtime", "downtime_hours", "USUAL_HOURS"]

#: Seconds a source may be silent when the setting names no ``default``.
DEFAULT_SILENT_AFTER = 3600
#: Hours of counts the usual rate is the median of (a week).
USUAL_HOURS = 168


class FeedState(str, enum.Enum):
    OK = "ok"
    STALE = "stale"
    LOW = "low"


@dataclass(frozen=True)
class FeedStatus:
    state: FeedState
    reason: str | None = None


@dataclass(frozen=True)
class Thresholds:
    """Seconds of silence after which each source is stale."""

    per_source: Mapping[str, int]
    default: int = DEFAULT_SILENT_AFTER

    def silent_after(self, source: str) -> int:
        return self.per_source.get(source, self.default)


def parse_thresholds(text: str) -> Thresholds:
    """``SOURCE=SECONDS`` items split by commas; the source ``default`` sets every other source's
    (else :data:`DEFAULT_SILENT_AFTER`). Errors name the item."""
    found: dict[str, int] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        source, sep, seconds = (s.strip() for s in item.partition("="))
        if not sep or not source:
            raise ValueError(f"feed threshold {item!r}: expected SOURCE=SECONDS")
        if source in found:
            raise ValueError(f"feed threshold {item!r}: {source} is given twice")
        if not seconds.isdigit() or int(seconds) < 1:
            raise ValueError(f"feed threshold {item!r}: SECONDS must be a whole number of at least 1")
        found[source] = int(seconds)
    default = found.pop("default", DEFAULT_SILENT_AFTER)
    return Thresholds(found, default)


def usual_rate(hourly: Sequence[int], hours: int = USUAL_HOURS) -> float | None:
    """The median of the last ``hours`` complete hours' event counts; None before a source has
    a full day of them (too little to call anything usual)."""
    recent = list(hourly)[-hours:]
    return statistics.median(recent) if len(recent) >= 24 else None


def _span(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 2 * 3600:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def feed_status(now: float, last_event_at: float | None, rate_now: int, usual_rate: float | None,
                silent_after: int, *, low_share: float = 0.1, min_usual: float = 10) -> FeedStatus:
    """Stale before low: a silent source is the worse news, and a stale one is low as well.

    ``last_event_at``: the source's newest event or heartbeat (None: none seen since tracking
    began); ``rate_now``: its events, heartbeats left out, in the last hour."""
    if last_event_at is None:
        return FeedStatus(FeedState.STALE, "no event seen from this source")
    silent = now - last_event_at
    if silent > silent_after:
        return FeedStatus(FeedState.STALE, f"no event for {_span(silent)} (limit {_span(silent_after)})")
    if usual_rate is not None and usual_rate >= min_usual and rate_now < low_share * usual_rate:
        return FeedStatus(FeedState.LOW, f"{rate_now} events in the last hour, usual {usual_rate:g} "
                                         f"(below {low_share:.0%} of usual)")
    return FeedStatus(FeedState.OK)


@dataclass(frozen=True)
class StatusChange:
    """A source's status from ``at`` on. For a stale change, ``at`` should be the source's last
    event: the silence began then, not when the threshold passed."""

    source: str
    at: float
    state: FeedState


def downtime(changes: Iterable[StatusChange], start: float, end: float) -> dict[str, list[tuple[float, float]]]:
    """Each source's stale intervals within [start, end), merged where they touch. A source stale
    when the period begins is down from ``start``; one still stale at its end, down to ``end``.
    Sources never stale in the period are left out."""
    by_source: dict[str, list[StatusChange]] = defaultdict(list)
    for c in changes:
        by_source[c.source].append(c)
    result: dict[str, list[tuple[float, float]]] = {}
    for source, series in by_source.items():
        intervals: list[tuple[float, float]] = []
        down_since: float | None = None
        for c in sorted(series, key=lambda c: c.at) + [StatusChange(source, end, FeedState.OK)]:
            at = min(max(c.at, start), end)
            if c.state is FeedState.STALE and down_since is None:
                down_since = at
            elif c.state is not FeedState.STALE and down_since is not None:
                if at > down_since:
                    if intervals and intervals[-1][1] == down_since:
                        down_since = intervals.pop()[0]
                    intervals.append((down_since, at))
                down_since = None
        if intervals:
            result[source] = intervals
    return result


def downtime_hours(changes: Iterable[StatusChange], start: float, end: float) -> dict[str, float]:
    """Hours each source was stale within [start, end)."""
    return {s: sum(b - a for a, b in iv) / 3600 for s, iv in downtime(changes, start, end).items()}
