"""The match stage: custody events -> notice jobs, a batch at a time.

Matching is CPU-bound and runs on a plain aiokafka consumer rather than a
Faust agent: Faust's per-event stream (an event object, a queue hop, an ack
and sensor calls per message, and a changelog write per table update) costs
several times the matching itself.

Each ``getmany`` batch is matched at once: registration updates first (so an
event matches the registrations published with it), then events (validated,
re-routed if on the wrong partition, de-duplicated, matched). Notice jobs,
re-routed records and dead letters go to the producer straight away, so a
notice never waits for a commit; registrations and seen event ids wait in
memory for the next commit (every ``SAVIN_COMMIT_INTERVAL`` seconds), which
follows the order in :mod:`savin.streams.stage`. An event is marked seen only
after its notices are in Kafka; a crash repeats what followed the last commit,
with the same notice ids (:func:`savin.domain.matching.notice_id`), which the deliver
stage's ledger drops.

State is per partition. ``custody-events`` and ``registrations`` are
co-partitioned by offender id and assigned with the range assignor, so a
worker holding events partition *p* holds registrations partition *p* too.
The registrations topic (compacted, keyed by registration id) is itself the
changelog of the registrations store; ``match-seen`` is the changelog of the
seen-event ids. On assignment both are replayed from the offsets the local
store has reached, so a restart replays only what it missed, and a worker on a
new machine rebuilds the partition from the topics.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition
from pydantic import TypeAdapter, ValidationError

from savin import metrics
from savin.domain.clock import utcnow
from savin.domain.escalation import escalates
from savin.domain.matching import corrections_for, is_repeat, notices_for
from savin.schemas import EventEnvelope, NoticeJob, StoredRegistration, parse_event
from savin.schemas.safety import HeldNotice, Hold
from savin.settings import Settings
from savin.streams.holding import PUBLISH_EVERY, HoldBook, HoldFollower
from savin.streams.stage import Pending, Stage, by_topic
from savin.streams.store import Store

__all__ = ["MatchStage"]

_REG = b"r:"  # + offender id -> JSON {registration_id: stored registration}
_SEEN = b"s:"  # + event id -> ISO time first matched
_RETRACTED = b"x:"  # + event id -> ISO time its retraction was matched

#: offender_id -> {registration_id: StoredRegistration}, as stored per offender.
REGISTRATIONS_OF = TypeAdapter(dict[str, StoredRegistration])


def _published_at(record) -> dt.datetime | None:
    """The custody event's Kafka timestamp: when it was published (or appended, on a
    topic that stamps records itself); None when the record has none."""
    stamp = getattr(record, "timestamp", None)
    if stamp is None or stamp < 0:
        return None
    return dt.datetime.fromtimestamp(stamp / 1000, dt.timezone.utc)


@dataclass
class _Settling:
    """An event whose notices wait ``SAVIN_HOLD_SETTLE`` seconds, so that a burst is seen before
    the first of its notices leave."""

    offset: int
    event: EventEnvelope
    jobs: list[NoticeJob]
    due: float  # time.monotonic()


def _put_registration(pending: Pending, reg: StoredRegistration, raw: bytes) -> None:
    key = _REG + reg.offender_id.encode()
    current = json.loads(pending.get(key) or b"{}")
    current[reg.registration_id] = json.loads(raw)
    pending.put(key, json.dumps(current).encode())


class MatchStage(Stage):
    """Custody events and registrations in, notice jobs out (see the module docstring)."""

    name = "match"

    def __init__(self, settings: Settings, **kwargs):
        from savin.topics import Topics

        t = Topics(settings)
        super().__init__(settings, inputs=[t.custody_events, t.registrations],
                         changelogs=[t.registrations, t.match_seen],
                         commit_interval=settings.commit_interval, batch_size=settings.match_batch_size, **kwargs)
        self._notice_topic = {"urgent": t.notices_urgent, "routine": t.notices_routine}
        self.book = HoldBook(settings.hold_rule_table)
        self._follower = HoldFollower(settings, self.book)
        #: Events whose notices wait for the burst check, per partition, in offset order.
        self._settling: dict[int, list[_Settling]] = {}
        #: The next offset of custody events handled, per partition (the commit stops at the first settling one).
        self._handled: dict[int, int] = {}
        self._settling_ids: set[str] = set()
        #: Committed offsets of custody events, and the partitions whose settled events went out since.
        self._committed: dict[TopicPartition, int] = {}
        self._released: set[int] = set()
        self._published = 0.0

    async def on_start(self) -> None:
        await self._follower.start()
        await super().on_start()

    async def on_stop(self) -> None:
        await super().on_stop()
        await self._follower.stop()

    async def assigned(self, partitions: set[int]) -> None:
        # Nothing is matched before the holds open when the stage started are known.
        await self._follower.caught_up.wait()
        self.book.keep_only(partitions)
        for p in set(self._settling) - partitions:
            for item in self._settling.pop(p):  # their new holder reads them again from the committed offset
                self._settling_ids.discard(str(item.event.event_id))
        for p in set(self._handled) - partitions:
            del self._handled[p]
        for p in partitions:
            tp = TopicPartition(self.topics.custody_events, p)
            if tp not in self._committed:
                self._committed[tp] = await self.consumer.committed(tp) or 0

    # ---- restore and commit -------------------------------------------------------

    def restore(self, pending: Pending, record) -> None:
        if record.topic == self.topics.registrations:
            try:
                reg = StoredRegistration.model_validate_json(record.value or b"")
            except ValidationError:
                return  # dead-lettered when it was first consumed
            _put_registration(pending, reg, record.value)
            return
        seen = json.loads(record.value or b"{}")
        at = dt.datetime.fromisoformat(seen["at"])
        if not is_repeat(at, utcnow(), self.settings.dedup_days):
            return  # past the dedup window: forgotten, and not brought back by a restore
        stamp = seen["at"].encode()
        for prefix, ids in ((_SEEN, seen["ids"]), (_RETRACTED, seen.get("retracted", ()))):
            for event_id in ids:
                pending.put(prefix + event_id.encode(), stamp)

    def expired(self, store: Store, now: dt.datetime):
        # match-seen is time-retained (one record holds a batch of ids), so the ids
        # leave the topic by retention and the store here; a restore skips old ones.
        for prefix in (_SEEN, _RETRACTED):
            for key, stamp in store.scan(prefix):
                if not is_repeat(dt.datetime.fromisoformat(stamp.decode()), now, self.settings.dedup_days):
                    yield key

    async def changelog(self, partition: int, pending: Pending):
        # The event ids first matched (and retracted) since the last commit, stamped with the commit's time.
        new = {prefix: [key for key, value in pending.items.items() if value is not None and key.startswith(prefix)]
               for prefix in (_SEEN, _RETRACTED)}
        if not any(new.values()):
            return []
        at = utcnow().isoformat()
        record: dict = {"at": at}
        for prefix, name in ((_SEEN, "ids"), (_RETRACTED, "retracted")):
            for key in new[prefix]:
                pending.put(key, at.encode())
            if new[prefix] or name == "ids":
                record[name] = [key[len(prefix):].decode() for key in new[prefix]]
        value = json.dumps(record).encode()
        return [(self.topics.match_seen, await self.producer.send(self.topics.match_seen, value, partition=partition))]

    async def commit(self) -> None:
        offsets = dict(self.checkpoint.offsets)
        await super().commit()
        self._committed.update({tp: o for tp, o in offsets.items() if tp.topic == self.topics.custody_events})
        self._released.clear()

    def _failed(self, e: Exception) -> None:
        super()._failed(e)
        # Settling events were never marked seen, and those settled since the commit lost their
        # marks: go back to the committed offset, before the first of them.
        for partition in set(self._settling) | self._released:
            tp = TopicPartition(self.topics.custody_events, partition)
            if tp in self.consumer.assignment() and (offset := self._committed.get(tp)) is not None:
                self.consumer.seek(tp, offset)
        self._settling.clear()
        self._settling_ids.clear()
        self._released.clear()
        self._handled.clear()

    # ---- one batch -------------------------------------------------------------------

    async def handle(self, batches: Mapping[TopicPartition, list]) -> None:
        now = utcnow()
        # Registrations first, so an event matches the registrations published with it.
        for tp, records in by_topic(batches, [self.topics.registrations, self.topics.custody_events]):
            pending = self.begin(tp, records[0].offset)
            if pending is None:
                continue
            if tp.topic == self.topics.registrations:
                await self._registrations(pending, tp.partition, records)
                self.done(tp, records[-1].offset + 1)
            else:
                await self._events(pending, tp.partition, records, now)
                self._handled[tp.partition] = records[-1].offset + 1
                self._done_events(tp.partition)

    def _done_events(self, partition: int) -> None:
        """Custody events are handled up to the first one still settling."""
        settling = self._settling.get(partition)
        handled = self._handled.get(partition)
        if handled is not None:
            self.done(TopicPartition(self.topics.custody_events, partition),
                      min(settling[0].offset, handled) if settling else handled)

    async def _registrations(self, pending: Pending, partition: int, records: Iterable) -> None:
        for r in records:
            async with self.guard(r, "registration"):
                reg = StoredRegistration.model_validate_json(r.value or b"")
                home = self.home(reg.offender_id.encode())
                if home != partition:
                    # e.g. replayed from dead letters: its offender's store lives elsewhere.
                    await self.send(self.topics.registrations, r.key, r.value, home)
                    continue
                _put_registration(pending, reg, r.value)
                metrics.REGISTRATIONS.labels(status=reg.status.value).inc()

    async def _events(self, pending: Pending, partition: int, records: list, now: dt.datetime) -> None:
        parsed = []
        for r in records:
            async with self.guard(r, "event"):
                parsed.append((r, parse_event(r.value or b"")))
        keys = [str(ev.event_id).encode() for _, ev in parsed]
        found = pending.store.get_many([_SEEN + k for k in keys] + [_RETRACTED + k for k in keys])
        seen_before, retracted_before = found[:len(keys)], found[len(keys):]
        counts = {"invalid": len(records) - len(parsed), "matched": 0, "no-registrations": 0, "duplicate": 0,
                  "rerouted": 0, "held": 0, "retracted": 0, "heartbeat": 0}
        stamp = now.isoformat().encode()
        clock = time.time()
        planned = 0
        for (r, ev), seen, retracted in zip(parsed, seen_before, retracted_before):
            async with self.guard(r, "event"):
                event_id = str(ev.event_id)
                seen_key = _SEEN + event_id.encode()
                home = self.home(ev.offender_id.encode())
                if home != partition:
                    # Published without the offender_id key: the registrations for this
                    # offender live on another partition, so send it there.
                    counts["rerouted"] += 1
                    await self.send(self.topics.custody_events, ev.offender_id.encode(), r.value, home)
                    continue
                first_seen = dt.datetime.fromisoformat(seen.decode()) if seen is not None else None
                if pending.items.get(seen_key) is not None or is_repeat(first_seen, now, self.settings.dedup_days) \
                        or self._is_settling(partition, ev):
                    counts["duplicate"] += 1
                    self.log.info("duplicate event dropped event=%s", event_id)
                    continue
                self.book.add(partition, ev.source, ev.event_type, clock)  # type: ignore[attr-defined]
                if retracted is not None or pending.items.get(_RETRACTED + event_id.encode()) is not None:
                    counts["retracted"] += 1
                    self.log.info("retracted event dropped event=%s", event_id)
                    pending.put(seen_key, stamp)
                    continue
                if not ev.kind.notifies:
                    counts["heartbeat"] += 1
                    pending.put(seen_key, stamp)
                    continue
                jobs = self._jobs(pending, ev, now)
                if ev.event_type == "EVENT_RETRACTED":  # type: ignore[attr-defined]
                    self._retract(pending, partition, str(ev.payload.retracted_event_id), stamp)  # type: ignore[attr-defined]
                published = _published_at(r)
                if published is not None:
                    jobs = [job.model_copy(update={"published_at": published}) for job in jobs]
                counts["matched" if jobs else "no-registrations"] += 1
                planned += len(jobs)
                if not jobs:
                    pending.put(seen_key, stamp)
                elif (hold := self._hold_for(ev)) is not None:
                    counts["held"] += 1
                    await self._hold(hold, jobs, now)
                    pending.put(seen_key, stamp)
                elif self.book.rule(ev.event_type) is not None and self.settings.hold_settle > 0:  # type: ignore[attr-defined]
                    self._settling.setdefault(partition, []).append(
                        _Settling(r.offset, ev, jobs, time.monotonic() + self.settings.hold_settle))
                    self._settling_ids.add(event_id)
                else:
                    await self._send_jobs(jobs)
                    pending.put(seen_key, stamp)
        for outcome, count in counts.items():
            if count:
                metrics.EVENTS.labels(outcome=outcome).inc(count)
        metrics.NOTICES_PLANNED.inc(planned)

    def _jobs(self, pending: Pending, ev: EventEnvelope, now: dt.datetime) -> list[NoticeJob]:
        raw = pending.get(_REG + ev.offender_id.encode())
        if not raw:
            return []
        regs = REGISTRATIONS_OF.validate_json(raw).values()
        escalate = escalates(ev.urgency.value, self.settings.escalate_routine)
        make = corrections_for if ev.event_type == "EVENT_RETRACTED" else notices_for  # type: ignore[attr-defined]
        return make(ev, regs, now, escalate)

    def _retract(self, pending: Pending, partition: int, event_id: str, stamp: bytes) -> None:
        """Remember the retracted event, so it sends nothing if it comes later; drop it if it is settling."""
        pending.put(_RETRACTED + event_id.encode(), stamp)
        settling = self._settling.get(partition, [])
        for item in [i for i in settling if str(i.event.event_id) == event_id]:
            settling.remove(item)
            self._settling_ids.discard(event_id)
            pending.put(_SEEN + event_id.encode(), stamp)
            metrics.EVENTS.labels(outcome="retracted").inc()
            self.log.info("retracted event dropped event=%s", event_id)

    def _is_settling(self, partition: int, ev: EventEnvelope) -> bool:
        return str(ev.event_id) in self._settling_ids

    # ---- holds ---------------------------------------------------------------------------

    def _hold_for(self, ev: EventEnvelope) -> Hold | None:
        """The hold an event's notices go to: an open one, or one its burst opens now."""
        source, event_type = ev.source, ev.event_type  # type: ignore[attr-defined]
        return self.book.holding(source, event_type, ev.offender_id) or self._open_if_over(source, event_type)

    def _open_if_over(self, source: str, event_type: str) -> Hold | None:
        now = time.time()
        reason = self.book.verdict(source, event_type, now)
        if reason is None:
            return None
        hold = self.book.open_mass(source, event_type, reason, now)
        self.checkpoint.produced(self.producer.send(self.topics.holds, hold.model_dump_json().encode(),
                                                    key=str(hold.hold_id).encode(), partition=0))
        self.log.warning("hold opened hold=%s source=%s event_type=%s: %s; its notices wait for an operator",
                         hold.hold_id, source, event_type, reason)
        return hold

    async def _hold(self, hold: Hold, jobs: list[NoticeJob], now: dt.datetime) -> None:
        key = str(hold.hold_id).encode()
        for job in jobs:
            held = HeldNotice(hold_id=hold.hold_id, job=job.model_copy(update={"hold_id": hold.hold_id}), at=now)
            await self.send(self.topics.held_notices, key, held.model_dump_json().encode())
        metrics.HOLD_NOTICES.labels(outcome="held").inc(len(jobs))

    async def _send_jobs(self, jobs: list[NoticeJob]) -> None:
        for job in jobs:
            await self.send(self._notice_topic[job.urgency.value], job.registration_id.encode(),
                            job.model_dump_json().encode())

    async def tick(self) -> None:
        """Settled events: held if their burst went over its rule meanwhile, else sent; and this
        instance's counts published for the others."""
        if self._settling:
            now, stamp, mono = utcnow(), utcnow().isoformat().encode(), time.monotonic()
            for partition, items in list(self._settling.items()):
                store = self.stores.get(partition)
                if store is None:
                    continue
                ready = [i for i in items if i.due <= mono or self.book.holding(
                    i.event.source, i.event.event_type, i.event.offender_id)]  # type: ignore[attr-defined]
                if not ready:
                    continue
                pending = self.checkpoint.touch(partition, store)
                self._released.add(partition)
                gone = {id(i) for i in ready}
                items[:] = [i for i in items if id(i) not in gone]
                for item in ready:
                    self._settling_ids.discard(str(item.event.event_id))
                    hold = self._hold_for(item.event)
                    if hold is not None:
                        metrics.EVENTS.labels(outcome="held").inc()
                        await self._hold(hold, item.jobs, now)
                    else:
                        await self._send_jobs(item.jobs)
                    pending.put(_SEEN + str(item.event.event_id).encode(), stamp)
                if not items:
                    del self._settling[partition]
                self._done_events(partition)
        if time.monotonic() - self._published >= PUBLISH_EVERY:
            self._published = time.monotonic()
            for counts in self.book.due_counts(time.time()):
                await self.producer.send(self.topics.hold_counts, counts.model_dump_json().encode(),
                                         key=f"p{counts.partition}".encode(), partition=0)
