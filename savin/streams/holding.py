"""What the match stage knows of holds (:mod:`savin.domain.holds`).

* Every :class:`~savin.schemas.safety.Hold` on the ``holds`` topic, read whole
  by every match stage instance: the mass holds open per (source, event type),
  the blocks of one offender, and when each (source, event type) was last
  decided (an operator's decision accounts for every event before it, so a
  burst that was approved is not held again; the next one is).
* The event counts of the partitions it holds (a :class:`~savin.domain.holds.Window`
  each) and the counts the other instances publish on ``hold-counts`` for
  theirs, so a burst spread over every partition is judged as a whole.
* How many offenders each source has (the status stage's counts on
  ``feed-counts``, summed over its partitions), which a rule's share is of.

A follower (a consumer with no group, assigned the single partition of each
topic) keeps both up to date; the stage waits for it to read what was on the
topics when it started before it matches anything, so a restart never sends
the notices of an open hold.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections import Counter as Tally

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from savin import metrics
from savin.domain.holds import BUCKET, HoldRule, HoldState, Window, hold_id, should_hold
from savin.schemas.safety import FeedCounts, Hold, HoldCounts, HoldKind
from savin.settings import Settings
from savin.streams.errors import fault
from savin.topics import Topics

__all__ = ["HoldBook", "HoldFollower"]

log = logging.getLogger("savin.match.holds")

_SEP = "\x1f"
#: Seconds between publications of a partition's counts (when they changed).
PUBLISH_EVERY = 1.0


class HoldBook:
    """Holds and counts, as one match stage instance sees them."""

    def __init__(self, rules: dict[str, HoldRule]):
        self.rules = rules
        keep = max((r.window_seconds for r in rules.values()), default=BUCKET) + BUCKET
        self.keep = keep
        self.holds: dict[uuid.UUID, Hold] = {}
        self.windows: dict[int, Window] = {}  # partition -> its counts, for the partitions held here
        self.others: dict[int, HoldCounts] = {}  # partition -> what its holder published
        self.offenders: dict[int, dict[str, int]] = {}  # status partition -> source -> its offenders there
        self._open_mass: dict[tuple[str, str], Hold] = {}
        self._blocks: dict[str, Hold] = {}
        self._decided: dict[tuple[str, str], float] = {}
        self._changed: set[int] = set()

    # ---- holds -------------------------------------------------------------------

    def apply(self, hold: Hold) -> None:
        self.holds[hold.hold_id] = hold
        if hold.kind is HoldKind.OFFENDER and hold.offender_id:
            if hold.state is HoldState.OPEN:
                self._blocks[hold.offender_id] = hold
            elif (b := self._blocks.get(hold.offender_id)) is not None and b.hold_id == hold.hold_id:
                del self._blocks[hold.offender_id]
        elif hold.kind is HoldKind.MASS and hold.source and hold.event_type:
            key = (hold.source, hold.event_type)
            if hold.state is HoldState.OPEN:
                self._open_mass[key] = hold
            else:
                if (h := self._open_mass.get(key)) is not None and h.hold_id == hold.hold_id:
                    del self._open_mass[key]
                decided = (hold.decided_at or hold.opened_at).timestamp()
                self._decided[key] = max(decided, self._decided.get(key, 0.0))
        self._gauge()

    def _gauge(self) -> None:
        open_ = Tally(h.kind.value for h in self.holds.values() if h.state is HoldState.OPEN)
        for kind in HoldKind:
            metrics.HOLDS_OPEN.labels(kind=kind.value).set(open_.get(kind.value, 0))

    def holding(self, source: str, event_type: str, offender_id: str) -> Hold | None:
        """The open hold an event's notices join: its offender's block, or its (source, type)'s mass hold."""
        return self._blocks.get(offender_id) or self._open_mass.get((source, event_type))

    def open_mass(self, source: str, event_type: str, reason: str, now: float) -> Hold:
        """A new mass hold (the caller writes it to the topic). Its id is the same on every instance
        that opens it within the same minute; a decided hold's id is never reused."""
        hid = hold_id(source, event_type, now)
        while hid in self.holds and self.holds[hid].state is not HoldState.OPEN:
            hid = uuid.uuid5(hid, "next")
        hold = Hold(hold_id=hid, kind=HoldKind.MASS, state=HoldState.OPEN, reason=reason, source=source,
                    event_type=event_type, opened_at=utc_from_unix(now))
        self.apply(hold)
        return hold

    # ---- counts ------------------------------------------------------------------

    def rule(self, event_type: str) -> HoldRule | None:
        return self.rules.get(event_type)

    def add(self, partition: int, source: str, event_type: str, now: float) -> None:
        if event_type in self.rules:
            self.windows.setdefault(partition, Window(self.keep)).add(source, event_type, now)
            self._changed.add(partition)

    def count(self, source: str, event_type: str, now: float) -> int:
        """Events of (source, type) in its rule's window, on every partition, after the last decision."""
        rule = self.rules[event_type]
        after = self._decided.get((source, event_type))
        total = sum(w.count(source, event_type, now, rule.window_seconds, after) for w in self.windows.values())
        key = f"{source}{_SEP}{event_type}"
        first = int((now - rule.window_seconds) // BUCKET)
        if after is not None:
            first = max(first, int(after // BUCKET) + 1)
        for partition, counts in self.others.items():
            if partition in self.windows:
                continue  # held here now: its own counts are the current ones
            total += sum(n for m, n in counts.counts.get(key, {}).items() if int(m) >= first)
        return total

    def verdict(self, source: str, event_type: str, now: float) -> str | None:
        """Why the notices of (source, type) must be held now, or None."""
        rule = self.rules.get(event_type)
        if rule is None:
            return None
        return should_hold(rule, self.count(source, event_type, now), self.offenders_known(source), source=source)

    def offenders_known(self, source: str) -> int:
        """The offenders whose newest event came from ``source``, over every status partition."""
        return sum(by_source.get(source, 0) for by_source in self.offenders.values())

    def apply_feed_counts(self, counts: FeedCounts) -> None:
        self.offenders[counts.partition] = {s: c.offenders for s, c in counts.sources.items() if c.offenders}

    def keep_only(self, partitions: set[int]) -> None:
        for p in set(self.windows) - partitions:
            del self.windows[p]

    def due_counts(self, now: float) -> list[HoldCounts]:
        """The partitions whose counts changed since they were last published, to publish."""
        out = []
        for p in sorted(self._changed & set(self.windows)):
            w = self.windows[p]
            w.prune(now)
            counts = {f"{s}{_SEP}{t}": {str(m): n for m, n in c.buckets.items()} for (s, t), c in w.counts.items()}
            out.append(HoldCounts(partition=p, counts=counts, at=utc_from_unix(now)))
        self._changed.clear()
        return out

    def apply_counts(self, counts: HoldCounts) -> None:
        self.others[counts.partition] = counts


class HoldFollower:
    """Tails ``holds``, ``hold-counts`` and ``feed-counts`` into a :class:`HoldBook`."""

    def __init__(self, settings: Settings, book: HoldBook):
        t = Topics(settings)
        self.bootstrap = settings.kafka_bootstrap
        self.book = book
        self.tps = [TopicPartition(t.holds, 0), TopicPartition(t.hold_counts, 0), TopicPartition(t.feed_counts, 0)]
        self.caught_up = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                          auto_offset_reset="earliest")
        await self._consumer.start()
        self._consumer.assign(self.tps)
        await self._consumer.seek_to_beginning(*self.tps)
        self._task = asyncio.create_task(self._run(), name="savin-match-holds")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        ends = None
        while True:
            try:
                if ends is None:
                    ends = await consumer.end_offsets(self.tps)
                batches = await consumer.getmany(timeout_ms=200, max_records=2000)
                for tp, records in batches.items():
                    for r in records:
                        self._apply(tp.topic, r.value)
                if not self.caught_up.is_set():
                    positions = [await consumer.position(tp) for tp in self.tps]
                    if all(p >= ends[tp] for p, tp in zip(positions, self.tps)):
                        self.caught_up.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the follower outlives a broker outage
                log.warning("holds follower: %s; trying again", fault(e))
                await asyncio.sleep(1.0)

    def _apply(self, topic: str, value: bytes | None) -> None:
        if value is None:
            return
        try:
            if topic == self.tps[0].topic:
                self.book.apply(Hold.model_validate_json(value))
            elif topic == self.tps[1].topic:
                self.book.apply_counts(HoldCounts.model_validate_json(value))
            else:
                self.book.apply_feed_counts(FeedCounts.model_validate_json(value))
        except ValidationError as e:
            log.warning("holds follower: unreadable record on %s (%s)", topic, fault(e))


def utc_from_unix(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, dt.timezone.utc)
