"""The plausibility check on mass changes: when one source sends far more events
of one type than could be true, their notices are matched but held until an
operator approves or rejects them.

Why: in Oregon in 2015 routine database maintenance made VINE send about 8,000
false "released" notices. No real source releases fifty people in ten minutes;
a burst like that is a broken feed, and a false "released" frightens the very
people savin exists for. Holding costs a few minutes of an operator's time;
sending cannot be undone.

The rules:

* Events of one (source, event type) are counted in a sliding window
  (:class:`Counts`): per-minute buckets, so memory is bounded by the longest
  window and a partition's counts can be published and summed with the other
  partitions' (events are keyed by offender, so one source's events spread over
  every partition). The window is rounded out to whole minutes (up to 60 s
  longer than asked): a burst is never missed by where a minute starts.
* A :class:`HoldRule` per event type holds when the count is over
  ``max_events``, or over ``max_share`` of the offenders savin knows for that
  source. The share is off by default: on a small county jail a share is a
  handful of events, which happen.
* A hold's id is a UUID5 of (source, event type, the minute it opened), so
  every worker that opens it names it the same. Events arriving while a hold is
  open join it (the caller looks the open hold up before opening another).
* Approved notices go out urgent first, then in event order
  (:func:`release_order`).

Times are Unix seconds; nothing here touches Kafka or a clock.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from savin.domain.vocabulary import EVENT_TYPES, Urgency

__all__ = ["BUCKET", "Counts", "Window", "HoldRule", "DEFAULT_HOLD_RULES", "parse_hold_rules", "should_hold",
           "hold_id", "HoldState", "HeldNotice", "release_order", "HOLD_NAMESPACE"]

#: Seconds per bucket.
BUCKET = 60

#: The settings string of the defaults: more than 50 RELEASED or 20 ESCAPED from one source in 10 minutes.
DEFAULT_HOLD_RULES = "RELEASED=50/600,ESCAPED=20/600"

#: The namespace of hold ids (a fixed UUID, so ids stay the same across versions).
HOLD_NAMESPACE = uuid.UUID("5d0f4a52-3c1e-5b8e-9a57-6f0d2c1b7e40")


def _minute(at: float) -> int:
    return int(at // BUCKET)


@dataclass
class Counts:
    """Events of one key in per-minute buckets, keeping ``keep`` seconds behind the newest."""

    keep: int = 3600
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, at: float, n: int = 1) -> None:
        """Count ``n`` events that arrived at ``at`` (savin's clock when it read them, so a producer's
        wrong clock can neither hide a burst nor wipe the buckets)."""
        m = _minute(at)
        self.buckets[m] = self.buckets.get(m, 0) + n
        self.prune(at)

    def count(self, now: float, window: int, after: float | None = None) -> int:
        """Events from the minute holding ``now - window`` on; with ``after``, only from the minute
        after the one holding it (an operator's decision accounts for everything before it)."""
        first = _minute(now - window)
        if after is not None:
            first = max(first, _minute(after) + 1)
        return sum(n for m, n in self.buckets.items() if m >= first)

    def prune(self, now: float) -> None:
        """Drop the buckets more than ``keep`` seconds before ``now``."""
        oldest = _minute(now) - -(-self.keep // BUCKET)
        for m in [m for m in self.buckets if m < oldest]:
            del self.buckets[m]

    def merge(self, buckets: Mapping[int, int]) -> None:
        """Add another partition's published buckets to these."""
        for m, n in buckets.items():
            self.buckets[int(m)] = self.buckets.get(int(m), 0) + n

    @classmethod
    def summed(cls, parts: Iterable[Mapping[int, int]], keep: int = 3600) -> Counts:
        """The counts of every partition together (what a reader of the published buckets builds)."""
        total = cls(keep)
        for part in parts:
            total.merge(part)
        return total


@dataclass
class Window:
    """:class:`Counts` per (source, event type), as one partition keeps them."""

    keep: int = 3600
    counts: dict[tuple[str, str], Counts] = field(default_factory=dict)

    def add(self, source: str, event_type: str, at: float, n: int = 1) -> None:
        self.counts.setdefault((source, event_type), Counts(self.keep)).add(at, n)

    def count(self, source: str, event_type: str, now: float, window: int, after: float | None = None) -> int:
        c = self.counts.get((source, event_type))
        return c.count(now, window, after) if c else 0

    def prune(self, now: float) -> None:
        """Forget buckets past ``keep`` and keys with none left (a source that went quiet)."""
        for key, c in list(self.counts.items()):
            c.prune(now)
            if not c.buckets:
                del self.counts[key]

    def buckets(self) -> dict[tuple[str, str], dict[int, int]]:
        """What a partition publishes: its buckets per key, copied."""
        return {key: dict(c.buckets) for key, c in self.counts.items()}


@dataclass(frozen=True)
class HoldRule:
    """Hold notices of ``event_type`` from one source when more than ``max_events`` arrive within
    ``window_seconds``, or more than ``max_share`` (0 to 1) of the source's known offenders (None: off)."""

    event_type: str
    max_events: int
    window_seconds: int
    max_share: float | None = None


def parse_hold_rules(text: str) -> dict[str, HoldRule]:
    """Rules from a setting: ``TYPE=MAX/SECONDS[/SHARE]`` items split by commas, SHARE a fraction
    (``0.05``) or a percentage (``5%``). An empty string holds nothing. Errors name the item."""
    rules: dict[str, HoldRule] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        event_type, sep, spec = (s.strip() for s in item.partition("="))
        parts = [p.strip() for p in spec.split("/")]
        if not sep or len(parts) not in (2, 3):
            raise ValueError(f"hold rule {item!r}: expected TYPE=MAX/SECONDS or TYPE=MAX/SECONDS/SHARE")
        if event_type not in EVENT_TYPES:
            raise ValueError(f"hold rule {item!r}: {event_type!r} is not an event type")
        if event_type in rules:
            raise ValueError(f"hold rule {item!r}: {event_type} is given twice")
        try:
            max_events, seconds = int(parts[0]), int(parts[1])
        except ValueError:
            raise ValueError(f"hold rule {item!r}: MAX and SECONDS must be whole numbers") from None
        if max_events < 1 or seconds < BUCKET:
            raise ValueError(f"hold rule {item!r}: MAX must be at least 1 and SECONDS at least {BUCKET}")
        share = _share(item, parts[2]) if len(parts) == 3 else None
        rules[event_type] = HoldRule(event_type, max_events, seconds, share)
    return rules


def _share(item: str, text: str) -> float:
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"hold rule {item!r}: SHARE must be a fraction such as 0.05 or a percentage such as 5%")\
            from None
    if not 0 < share <= 1:
        raise ValueError(f"hold rule {item!r}: SHARE must be above 0 and at most 1 (100%)")
    return share


def _span(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def should_hold(rule: HoldRule, count: int, offenders_known: int | None, *, source: str) -> str | None:
    """Why the notices of ``count`` events of the rule's type from ``source`` in its window must be
    held, or None when the count is plausible. ``offenders_known``: how many offenders savin knows
    for that source (None or 0: unknown, and the share is not judged)."""
    what = f"{count} {rule.event_type} from {source} in {_span(rule.window_seconds)}"
    if count > rule.max_events:
        return f"{what} (limit {rule.max_events})"
    if rule.max_share is not None and offenders_known and count > rule.max_share * offenders_known:
        return (f"{what}, {count / offenders_known:.1%} of its {offenders_known} offenders "
                f"(limit {rule.max_share:.1%})")
    return None


def hold_id(source: str, event_type: str, opened_at: float) -> uuid.UUID:
    """The same for every worker that opens the hold within the same minute."""
    return uuid.uuid5(HOLD_NAMESPACE, f"{source}\x1f{event_type}\x1f{_minute(opened_at)}")


class HoldState(str, enum.Enum):
    OPEN = "open"
    APPROVED = "approved"  # everything held goes out, in release_order
    REJECTED = "rejected"  # nothing goes out; each held notice is recorded as rejected


class Ordered(Protocol):
    event_type: str
    occurred_at: object
    event_id: object


T = TypeVar("T", bound=Ordered)


@dataclass(frozen=True)
class HeldNotice:
    """A matched notice kept back by a hold."""

    notice_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    occurred_at: float


def release_order(held: Iterable[T]) -> list[T]:
    """Urgent first (a real escape in the same hold must not wait behind routine notices), then
    event order: ``occurred_at``, then ``event_id`` to settle ties the same way every time. Takes
    anything with ``event_type``, ``occurred_at`` and ``event_id``."""

    def key(n: T) -> tuple:
        kind = EVENT_TYPES.get(n.event_type)
        return (kind is None or kind.urgency is not Urgency.URGENT, n.occurred_at, str(n.event_id))

    return sorted(held, key=key)
