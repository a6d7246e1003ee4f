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
from collections.abc import Iterable, Mapping

from aiokafka import TopicPartition
from pydantic import TypeAdapter, ValidationError

from savin import metrics
from savin.domain.clock import utcnow
from savin.domain.escalation import escalates
from savin.domain.matching import is_repeat, notices_for
from savin.schemas import StoredRegistration, parse_event
from savin.settings import Settings
from savin.streams.stage import Pending, Stage, by_topic
from savin.streams.store import Store

__all__ = ["MatchStage"]

_REG = b"r:"  # + offender id -> JSON {registration_id: stored registration}
_SEEN = b"s:"  # + event id -> ISO time first matched

#: offender_id -> {registration_id: StoredRegistration}, as stored per offender.
REGISTRATIONS_OF = TypeAdapter(dict[str, StoredRegistration])


def _published_at(record) -> dt.datetime | None:
    """The custody event's Kafka timestamp: when it was published (or appended, on a
    topic that stamps records itself); None when the record has none."""
    stamp = getattr(record, "timestamp", None)
    if stamp is None or stamp < 0:
        return None
    return dt.datetime.fromtimestamp(stamp / 1000, dt.timezone.utc)


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
        for event_id in seen["ids"]:
            pending.put(_SEEN + event_id.encode(), stamp)

    def expired(self, store: Store, now: dt.datetime):
        # match-seen is time-retained (one record holds a batch of ids), so the ids
        # leave the topic by retention and the store here; a restore skips old ones.
        for key, stamp in store.scan(_SEEN):
            if not is_repeat(dt.datetime.fromisoformat(stamp.decode()), now, self.settings.dedup_days):
                yield key

    async def changelog(self, partition: int, pending: Pending):
        # The event ids first matched since the last commit, stamped with the commit's time.
        seen = [key for key, value in pending.items.items() if value is not None and key.startswith(_SEEN)]
        if not seen:
            return []
        at = utcnow().isoformat()
        for key in seen:
            pending.put(key, at.encode())
        value = json.dumps({"ids": [key[len(_SEEN):].decode() for key in seen], "at": at}).encode()
        return [(self.topics.match_seen, await self.producer.send(self.topics.match_seen, value, partition=partition))]

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
            else:
                await self._events(pending, tp.partition, records, now)
            self.done(tp, records[-1].offset + 1)

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
        seen_before = pending.store.get_many([_SEEN + str(ev.event_id).encode() for _, ev in parsed])
        counts = {"invalid": len(records) - len(parsed), "matched": 0, "no-registrations": 0, "duplicate": 0,
                  "rerouted": 0}
        stamp = now.isoformat().encode()
        planned = 0
        for (r, ev), seen in zip(parsed, seen_before):
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
                if pending.items.get(seen_key) is not None or is_repeat(first_seen, now, self.settings.dedup_days):
                    counts["duplicate"] += 1
                    self.log.info("duplicate event dropped event=%s", event_id)
                    continue
                raw = pending.get(_REG + ev.offender_id.encode())
                escalate = escalates(ev.urgency.value, self.settings.escalate_routine)
                jobs = (notices_for(ev, REGISTRATIONS_OF.validate_json(raw).values(), now, escalate)
                        if raw else [])
                published = _published_at(r)
                for job in jobs:
                    if published is not None:
                        job = job.model_copy(update={"published_at": published})
                    await self.send(self._notice_topic[job.urgency.value], job.registration_id.encode(),
                                    job.model_dump_json().encode())
                counts["matched" if jobs else "no-registrations"] += 1
                planned += len(jobs)
                pending.put(seen_key, stamp)
        for outcome, count in counts.items():
            if count:
                metrics.EVENTS.labels(outcome=outcome).inc(count)
        metrics.NOTICES_PLANNED.inc(planned)
