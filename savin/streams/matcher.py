"""The match stage: custody events -> notice jobs, a batch at a time.

Matching is CPU-bound and runs on a plain aiokafka consumer rather than a
Faust agent: Faust's per-event stream (an event object, a queue hop, an ack
and sensor calls per message, and a changelog write per table update) costs
several times the matching itself.

Each ``getmany`` batch is matched at once: registration updates first (so an
event matches the registrations published with it), then events (validated,
re-routed if on the wrong partition, de-duplicated, matched). Notice jobs,
re-routed records and dead letters go to the producer straight away, so a
notice never waits for a commit. What the batch changes (registrations, seen
event ids, offsets) is kept in memory on top of the partition's store until the
next commit, at most ``SAVIN_COMMIT_INTERVAL`` seconds later:

1. wait until Kafka has acknowledged everything produced since the last commit;
2. write the new seen event ids to the ``match-seen`` changelog, one record per
   partition;
3. write registrations, seen ids and both topics' offsets to the partition's
   local RocksDB in one atomic write;
4. commit the consumer offsets.

If anything fails, everything since the last commit is dropped and the consumer
goes back to where it was: the records are matched again, produce the same
notice ids (:func:`savin.matching.notice_id`), and the deliver stage's ledger
drops those already sent. An event is marked seen only after its notices are
in Kafka.

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

import asyncio
import datetime as dt
import functools
import json
import logging
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service
from pydantic import ValidationError

from savin import metrics
from savin.kafka import partition_for, producer
from savin.matching import notices_for
from savin.schemas import StoredRegistration, describe_errors, parse_event
from savin.settings import Settings
from savin.streams.common import REGISTRATIONS_OF, dead_letter_record, fault
from savin.topics import Topics

__all__ = ["MatchStage", "PartitionStore"]

log = logging.getLogger("savin.match")

_OFFSET = b"\x00offset:"  # + topic name -> next offset the store has applied
_REG = b"r:"  # + offender id -> JSON {registration_id: stored registration}
_SEEN = b"s:"  # + event id -> ISO time first matched
#: Commit early when this many records produced since the last commit await acknowledgement.
_MAX_UNCOMMITTED = 50_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class PartitionStore:
    """One partition's registrations and seen event ids: a local RocksDB (or a
    dict, for ``SAVIN_STORE=memory``), written only in whole batches."""

    def __init__(self, path: Path | None, settings: Settings):
        self.path = path
        if path is None:
            self._db: dict[bytes, bytes] | object = {}
            return
        from rocksdict import BlockBasedOptions, Cache, Options, Rdict

        mb = 1024 * 1024
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.set_write_buffer_size(settings.rocksdb_write_buffer_mb * mb)
        opts.set_max_write_buffer_number(2)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(settings.rocksdb_cache_mb * mb))
        opts.set_block_based_table_factory(table)
        path.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), opts)

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)  # type: ignore[union-attr]

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        if isinstance(self._db, dict):
            return [self._db.get(k) for k in keys]
        return self._db.get(keys) if keys else []  # rocksdict: one multi-get

    def offset(self, topic: str) -> int | None:
        raw = self.get(_OFFSET + topic.encode())
        return int(raw) if raw is not None else None

    def write(self, items: Mapping[bytes, bytes], offsets: Mapping[str, int]) -> None:
        """Write ``items`` and the topics' next offsets atomically."""
        puts = {**items, **{_OFFSET + t.encode(): str(o).encode() for t, o in offsets.items()}}
        if isinstance(self._db, dict):
            self._db.update(puts)
            return
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for k, v in puts.items():
            batch.put(k, v)
        self._db.write(batch)  # type: ignore[union-attr]

    def close(self) -> None:
        if not isinstance(self._db, dict):
            self._db.close()  # type: ignore[union-attr]


class _Pending:
    """What one partition has changed since the last commit: read through to
    the store, written to it at the commit."""

    def __init__(self, store: PartitionStore):
        self.store = store
        self.items: dict[bytes, bytes] = {}
        self.offsets: dict[str, int] = {}
        self.seen: dict[str, None] = {}  # insertion-ordered set of event ids

    def registrations(self, offender_id: str) -> bytes | None:
        key = _REG + offender_id.encode()
        return self.items.get(key) or self.store.get(key)

    def put_registration(self, reg: StoredRegistration, raw: bytes) -> None:
        current = json.loads(self.registrations(reg.offender_id) or b"{}")
        current[reg.registration_id] = json.loads(raw)
        self.items[_REG + reg.offender_id.encode()] = json.dumps(current).encode()


class _Assignments(ConsumerRebalanceListener):
    def __init__(self, stage: MatchStage):
        self.stage = stage

    async def on_partitions_revoked(self, revoked) -> None:
        # The batch in hand is finished and committed before the partitions move.
        async with self.stage.lock:
            await self.stage.commit_or_rewind()

    async def on_partitions_assigned(self, assigned) -> None:
        async with self.stage.lock:
            await self.stage.assign({tp.partition for tp in assigned if tp.topic == self.stage.topics.custody_events})


class MatchStage(Service):
    """The match stage as a service of the worker (see the module docstring)."""

    def __init__(self, settings: Settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings
        self.topics = Topics(settings)
        self.lock = asyncio.Lock()
        self.stores: dict[int, PartitionStore] = {}
        self.ready = asyncio.Event()
        n = settings.partitions
        self.home = functools.lru_cache(maxsize=1 << 16)(lambda key: partition_for(key, n))
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._reset()
        t = self.topics
        self._notice_topic = {"urgent": t.notices_urgent, "routine": t.notices_routine}

    # ---- lifecycle -------------------------------------------------------------

    async def on_start(self) -> None:
        s = self.settings
        self.producer = producer(s.kafka_bootstrap, linger_ms=2, max_batch_size=256 * 1024)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.topics.match_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self.producer.start()
        self.consumer.subscribe([self.topics.custody_events, self.topics.registrations],
                                listener=_Assignments(self))
        await self.consumer.start()
        self._task = asyncio.ensure_future(self._run())

    async def on_stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 30)
                async with self.lock:
                    await self.commit_or_rewind()
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - stopping regardless
                log.exception("match stage did not stop cleanly")
        await self.consumer.stop()
        await self.producer.stop()
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    async def _run(self) -> None:
        batch_size = self.settings.match_batch_size
        interval = self.settings.commit_interval
        while not self._stopping:
            try:
                batches = await self.consumer.getmany(timeout_ms=100, max_records=batch_size)
                async with self.lock:
                    if batches:
                        await self.handle(batches)
                    if self._rewind and (time.monotonic() - self._since >= interval
                                         or len(self._produced) >= _MAX_UNCOMMITTED):
                        await self.commit()
            except Exception as e:  # noqa: BLE001 - the stage must outlive a broker outage
                log.warning("match stage: %s; repeating everything since the last commit", fault(e))
                async with self.lock:
                    self.rewind()
                await asyncio.sleep(1.0)

    # ---- commit and rewind ---------------------------------------------------------

    def _reset(self) -> None:
        self._pending: dict[int, _Pending] = {}
        self._produced: list[asyncio.Future] = []
        self._commit: dict[TopicPartition, int] = {}
        self._rewind: dict[TopicPartition, int] = {}  # first offset handled since the last commit
        self._since = time.monotonic()

    async def commit(self) -> None:
        """Make everything since the last commit durable, in the order the module docstring gives."""
        if self._produced:
            await asyncio.gather(*self._produced)
        sent = []
        for p, pending in self._pending.items():
            if pending.seen:
                value = json.dumps({"ids": list(pending.seen), "at": _now().isoformat()}).encode()
                sent.append((pending, await self.producer.send(self.topics.match_seen, value, partition=p)))
        stamp = _now().isoformat().encode()
        for pending, fut in sent:
            pending.offsets[self.topics.match_seen] = (await fut).offset + 1
        for pending in self._pending.values():
            for event_id in pending.seen:
                pending.items[_SEEN + event_id.encode()] = stamp
            pending.store.write(pending.items, pending.offsets)
        offsets = self._commit
        self._reset()
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as e:
            # A rebalance took the partitions: the next holder repeats these records,
            # which produce the same notice ids and are dropped as seen or sent.
            log.warning("match stage: commit failed (%s); those records will be matched again",
                        type(e).__name__)

    def rewind(self) -> None:
        """Drop everything since the last commit and go back to it."""
        assigned = self.consumer.assignment()
        for tp, offset in self._rewind.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)
        self._reset()

    async def commit_or_rewind(self) -> None:
        try:
            await self.commit()
        except Exception as e:  # noqa: BLE001
            log.warning("match stage: commit failed (%s); repeating since the last commit", fault(e))
            self.rewind()

    # ---- assignment and restore -------------------------------------------------

    def _store_path(self, partition: int) -> Path | None:
        if self.settings.store != "rocksdb":
            return None
        return self.settings.data_dir / "match" / f"p{partition}"

    async def assign(self, partitions: set[int]) -> None:
        """Close stores of partitions gone elsewhere; bring the others up to date."""
        self.ready.clear()
        for p in set(self.stores) - partitions:
            self.stores.pop(p).close()
        for p in sorted(partitions):
            if p not in self.stores:
                self.stores[p] = self._open(p)
        started = time.monotonic()
        applied = await self._restore(sorted(partitions))
        regs = self.topics.registrations
        for p in partitions:
            self.consumer.seek(TopicPartition(regs, p), self.stores[p].offset(regs) or 0)
        log.info("match stage holds partitions %s; restored %d records in %.2f s",
                 sorted(partitions), applied, time.monotonic() - started)
        self.ready.set()

    def _open(self, partition: int) -> PartitionStore:
        path = self._store_path(partition)
        try:
            return PartitionStore(path, self.settings)
        except Exception as e:  # noqa: BLE001 - a damaged store is rebuilt from the topics
            if path is None:
                raise
            log.warning("match store p%d unreadable (%s); rebuilding it from the topics", partition, fault(e))
            shutil.rmtree(path, ignore_errors=True)
            return PartitionStore(path, self.settings)

    async def _restore(self, partitions: list[int]) -> int:
        """Replay registrations and seen ids each store has not applied yet."""
        if not partitions:
            return 0
        regs, seen = self.topics.registrations, self.topics.match_seen
        reader = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False,
                                  max_partition_fetch_bytes=4 * 1024 * 1024)
        await reader.start()
        applied = 0
        try:
            tps = [TopicPartition(t, p) for p in partitions for t in (regs, seen)]
            reader.assign(tps)
            ends = await reader.end_offsets(tps)
            starts = await reader.beginning_offsets(tps)
            todo = {}
            for tp in tps:
                start = max(self.stores[tp.partition].offset(tp.topic) or 0, starts[tp])
                if start < ends[tp]:
                    reader.seek(tp, start)
                    todo[tp] = ends[tp]
            for tp in set(tps) - set(todo):
                reader.pause(tp)
            last_report = time.monotonic()
            while todo:
                got = await reader.getmany(*todo, timeout_ms=500, max_records=10_000)
                for tp, records in got.items():
                    records = [r for r in records if r.offset < todo[tp]]
                    if not records:
                        continue
                    batch = _Pending(self.stores[tp.partition])
                    for r in records:
                        if tp.topic == regs:
                            self._restore_registration(batch, r.value)
                        else:
                            seen = json.loads(r.value)
                            stamp = seen["at"].encode()
                            for event_id in seen["ids"]:
                                batch.items[_SEEN + event_id.encode()] = stamp
                    batch.store.write(batch.items, {tp.topic: records[-1].offset + 1})
                    applied += len(records)
                    if records[-1].offset + 1 >= todo[tp]:
                        del todo[tp]
                        reader.pause(tp)
                if time.monotonic() - last_report > 5:
                    last_report = time.monotonic()
                    log.info("match stage restoring: %d records so far, %d partitions to go", applied, len(todo))
        finally:
            await reader.stop()
        return applied

    @staticmethod
    def _restore_registration(batch: _Pending, raw: bytes | None) -> None:
        try:
            reg = StoredRegistration.model_validate_json(raw or b"")
        except ValidationError:
            return  # dead-lettered when it was first consumed
        batch.put_registration(reg, raw)

    # ---- one batch ---------------------------------------------------------------

    async def handle(self, batches: Mapping[TopicPartition, list]) -> None:
        """Match one ``getmany`` result; what it changes waits in memory for the next commit."""
        now = _now()
        regs_topic = self.topics.registrations
        # Registrations first, so an event matches the registrations published with it.
        for tp, records in sorted(batches.items(), key=lambda kv: kv[0].topic != regs_topic):
            store = self.stores.get(tp.partition)
            if store is None or not records:
                continue  # no longer ours: whoever holds it now will handle these
            pending = self._pending.get(tp.partition)
            if pending is None:
                pending = self._pending[tp.partition] = _Pending(store)
            self._rewind.setdefault(tp, records[0].offset)
            if tp.topic == regs_topic:
                await self._registrations(pending, tp.partition, records)
            else:
                await self._events(pending, tp.partition, records, now)
            pending.offsets[tp.topic] = self._commit[tp] = records[-1].offset + 1

    async def _send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        self._produced.append(await self.producer.send(topic, value, key=key, partition=partition))

    async def _dead_letter(self, record, reason: str) -> None:
        topic = record.topic.removeprefix(self.settings.namespace + ".")
        metrics.DEAD_LETTERS.labels(topic=topic).inc()
        log.warning("dead letter topic=%s partition=%s offset=%s reason=%s",
                    record.topic, record.partition, record.offset, reason)
        await self._send(self.topics.dead_letters, None, dead_letter_record(record, reason))

    async def _registrations(self, pending: _Pending, partition: int, records: Iterable) -> None:
        for r in records:
            try:
                reg = StoredRegistration.model_validate_json(r.value or b"")
                home = self.home(reg.offender_id.encode())
                if home != partition:
                    # e.g. replayed from dead letters: its offender's store lives elsewhere.
                    await self._send(self.topics.registrations, r.key, r.value, home)
                    continue
                pending.put_registration(reg, r.value)
                metrics.REGISTRATIONS.labels(status=reg.status.value).inc()
            except ValidationError as e:
                await self._dead_letter(r, f"invalid registration: {describe_errors(e)}")
            except Exception as e:  # noqa: BLE001 - never let one message stop the stream
                await self._dead_letter(r, f"registration failed: {fault(e)}")

    async def _events(self, pending: _Pending, partition: int, records: list, now: dt.datetime) -> None:
        parsed = []
        for r in records:
            try:
                parsed.append((r, parse_event(r.value or b"")))
            except ValidationError as e:
                metrics.EVENTS.labels(outcome="invalid").inc()
                await self._dead_letter(r, f"invalid event: {describe_errors(e)}")
        seen_before = pending.store.get_many([_SEEN + str(ev.event_id).encode() for _, ev in parsed])
        oldest = now - dt.timedelta(days=self.settings.dedup_days)
        counts = {"matched": 0, "no-registrations": 0, "duplicate": 0, "rerouted": 0}
        planned = 0
        for (r, ev), seen in zip(parsed, seen_before):
            try:
                event_id = str(ev.event_id)
                home = self.home(ev.offender_id.encode())
                if home != partition:
                    # Published without the offender_id key: the registrations for this
                    # offender live on another partition, so send it there.
                    counts["rerouted"] += 1
                    await self._send(self.topics.custody_events, ev.offender_id.encode(), r.value, home)
                    continue
                if event_id in pending.seen or (seen is not None and dt.datetime.fromisoformat(seen.decode()) > oldest):
                    counts["duplicate"] += 1
                    log.info("duplicate event dropped event=%s", event_id)
                    continue
                raw = pending.registrations(ev.offender_id)
                jobs = notices_for(ev, REGISTRATIONS_OF.validate_json(raw).values(), now) if raw else []
                for job in jobs:
                    await self._send(self._notice_topic[job.urgency.value], job.registration_id.encode(),
                                     job.model_dump_json().encode())
                counts["matched" if jobs else "no-registrations"] += 1
                planned += len(jobs)
                pending.seen[event_id] = None
            except Exception as e:  # noqa: BLE001
                metrics.EVENTS.labels(outcome="error").inc()
                await self._dead_letter(r, f"match failed: {fault(e)}")
        for outcome, count in counts.items():
            if count:
                metrics.EVENTS.labels(outcome=outcome).inc(count)
        metrics.NOTICES_PLANNED.inc(planned)
