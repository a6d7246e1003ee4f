"""A stage: one aiokafka consumer group, a batch at a time, with a local store
per partition that is restored from Kafka.

The match and deliver stages are both built on :class:`Stage`. Their input
topics are co-partitioned (same partition count, same key), and the group uses
the range assignor, so a worker holding partition *p* of one input holds
partition *p* of all of them, and the store of partition *p* serves them all.

A batch's effects on the store wait in memory (:class:`Pending`, read through
to the store) until the stage commits, which it does in this order:

1. wait until Kafka has acknowledged everything produced since the last commit;
2. write the changed state to the stage's changelog topic(s) and wait for those;
3. write the state and every topic's next offset to the partition's store in
   one atomic write;
4. commit the consumer offsets.

If anything fails, everything since the last commit is dropped and the consumer
goes back to it. On assignment each store replays its changelogs from the
offsets it has reached, so a restart replays only what it missed and a worker on
a new machine rebuilds the partition from Kafka.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from savin import metrics
from savin.settings import Settings
from savin.streams.errors import dead_letter_record, fault
from savin.topics import Topics, partition_for, producer

__all__ = ["PartitionStore", "Pending", "Stage"]

_OFFSET = b"\x00offset:"  # + topic name -> next offset the store has applied
#: Commit early when this many records produced since the last commit await acknowledgement.
MAX_UNCOMMITTED = 50_000


class PartitionStore:
    """One partition's state: a local RocksDB (or a dict, for
    ``SAVIN_STORE=memory``), written only in whole batches with its offsets."""

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


class Pending:
    """What one partition has changed since the last commit: read through to
    the store, written to it at the commit."""

    def __init__(self, store: PartitionStore):
        self.store = store
        self.items: dict[bytes, bytes] = {}
        self.offsets: dict[str, int] = {}

    def get(self, key: bytes) -> bytes | None:
        value = self.items.get(key)
        return value if value is not None else self.store.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.items[key] = value


class _Assignments(ConsumerRebalanceListener):
    def __init__(self, stage: Stage):
        self.stage = stage

    async def on_partitions_revoked(self, revoked) -> None:
        # What was handled is committed before the partitions move.
        async with self.stage.lock:
            await self.stage.commit_or_rewind()

    async def on_partitions_assigned(self, assigned) -> None:
        async with self.stage.lock:
            await self.stage.assign({tp.partition for tp in assigned})


class Stage(Service):
    """The machinery; subclasses say what a batch does (:meth:`handle`), how a
    changelog record is restored (:meth:`restore`) and what goes to the
    changelogs at a commit (:meth:`changelog`)."""

    #: Name of the stage: its stores are ``<data dir>/<name>``; its group is ``<namespace>.<name>`` (:class:`Topics`).
    name: str = ""

    def __init__(self, settings: Settings, inputs: list[str], changelogs: list[str], commit_interval: float,
                 batch_size: int, fetch_bytes: int = 4 * 1024 * 1024, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings
        self.topics = Topics(settings)
        self.inputs = inputs
        self.changelogs = changelogs
        self.commit_interval = commit_interval
        self.batch_size = batch_size
        self.fetch_bytes = fetch_bytes
        self.lock = asyncio.Lock()
        self.stores: dict[int, PartitionStore] = {}
        self.ready = asyncio.Event()
        self.log = logging.getLogger(f"savin.{self.name}")
        n = settings.partitions
        self.home = functools.lru_cache(maxsize=1 << 16)(lambda key: partition_for(key, n))
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._reset()

    # ---- what a stage does ---------------------------------------------------------

    async def handle(self, batches: Mapping[TopicPartition, list]) -> None:
        raise NotImplementedError

    def restore(self, pending: Pending, record) -> None:
        """Apply one changelog record (an aiokafka ``ConsumerRecord``) to the store."""
        raise NotImplementedError

    async def changelog(self, partition: int, pending: Pending) -> list[tuple[str, asyncio.Future]]:
        """Produce this partition's pending state changes; return (topic, ack future) pairs."""
        return []

    async def fetch(self) -> Mapping[TopicPartition, list]:
        return await self.consumer.getmany(timeout_ms=100, max_records=self.batch_size)

    # ---- lifecycle -------------------------------------------------------------------

    async def on_start(self) -> None:
        s = self.settings
        self.producer = producer(s.kafka_bootstrap, linger_ms=2, max_batch_size=256 * 1024)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.topics.group(self.name),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            max_partition_fetch_bytes=self.fetch_bytes,
        )
        await self.producer.start()
        self.consumer.subscribe(self.inputs, listener=_Assignments(self))
        await self.consumer.start()
        self._task = asyncio.ensure_future(self._run())

    async def on_stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 60)
                async with self.lock:
                    await self.commit_or_rewind()
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - stopping regardless
                self.log.exception("%s stage did not stop cleanly", self.name)
        await self.consumer.stop()
        await self.producer.stop()
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                batches = await self.fetch()
                async with self.lock:
                    if batches:
                        await self.handle(batches)
                        self._note_lag(batches)
                    if self._rewind and (time.monotonic() - self._since >= self.commit_interval
                                         or len(self._produced) >= MAX_UNCOMMITTED):
                        await self.commit()
            except Exception as e:  # noqa: BLE001 - the stage must outlive a broker outage
                self.log.warning("%s stage: %s; repeating everything since the last commit", self.name, fault(e))
                async with self.lock:
                    self.rewind()
                await asyncio.sleep(1.0)

    def _note_lag(self, batches: Mapping[TopicPartition, list]) -> None:
        prefix = self.settings.namespace + "."
        for tp, records in batches.items():
            end = self.consumer.highwater(tp)
            if records and end is not None:
                metrics.LAG.labels(stage=self.name, topic=tp.topic.removeprefix(prefix),
                                   partition=str(tp.partition)).set(max(0, end - records[-1].offset - 1))

    # ---- one batch's bookkeeping ----------------------------------------------------------

    def pending(self, tp: TopicPartition, first_offset: int) -> Pending | None:
        """The partition's pending state, noting where a rewind would go; None if not ours."""
        store = self.stores.get(tp.partition)
        if store is None:
            return None  # no longer ours: whoever holds it now will handle these
        self._rewind.setdefault(tp, first_offset)
        pending = self._pending.get(tp.partition)
        if pending is None:
            pending = self._pending[tp.partition] = Pending(store)
        return pending

    def done(self, tp: TopicPartition, next_offset: int) -> None:
        """Everything in ``tp`` before ``next_offset`` is handled."""
        self._commit[tp] = next_offset
        if (pending := self._pending.get(tp.partition)) is not None:
            pending.offsets[tp.topic] = next_offset

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        self._produced.append(await self.producer.send(topic, value, key=key, partition=partition))

    async def dead_letter(self, record, reason: str) -> None:
        topic = record.topic.removeprefix(self.settings.namespace + ".")
        metrics.DEAD_LETTERS.labels(topic=topic).inc()
        self.log.warning("dead letter topic=%s partition=%s offset=%s reason=%s",
                         record.topic, record.partition, record.offset, reason)
        await self.send(self.topics.dead_letters, None, dead_letter_record(record, reason))

    # ---- commit and rewind -------------------------------------------------------------

    def _reset(self) -> None:
        self._pending: dict[int, Pending] = {}
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
            sent.extend((pending, topic, fut) for topic, fut in await self.changelog(p, pending))
        for pending, topic, fut in sent:
            offset = (await fut).offset + 1
            pending.offsets[topic] = max(offset, pending.offsets.get(topic, 0))
        for pending in self._pending.values():
            pending.store.write(pending.items, pending.offsets)
        offsets = self._commit
        self._reset()
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as e:
            # A rebalance took the partitions: the next holder repeats these records,
            # which the stores and the ledger recognise.
            self.log.warning("%s stage: commit failed (%s); those records will be handled again",
                             self.name, type(e).__name__)

    def rewind(self) -> None:
        """Drop everything since the last commit and go back to it."""
        assigned = self.consumer.assignment()
        for tp, offset in self._rewind.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)
        self._reset()

    async def commit_or_rewind(self) -> None:
        if not self._rewind:
            return
        try:
            await self.commit()
        except Exception as e:  # noqa: BLE001
            self.log.warning("%s stage: commit failed (%s); repeating since the last commit", self.name, fault(e))
            self.rewind()

    # ---- assignment and restore -----------------------------------------------------------

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
        for topic in set(self.changelogs) & set(self.inputs):
            # An input that is its own changelog continues where the store got to.
            for p in partitions:
                self.consumer.seek(TopicPartition(topic, p), self.stores[p].offset(topic) or 0)
        self.log.info("%s stage holds partitions %s; restored %d records in %.2f s",
                      self.name, sorted(partitions), applied, time.monotonic() - started)
        await self.assigned(partitions)
        self.ready.set()

    async def assigned(self, partitions: set[int]) -> None:
        """Called once the stores of ``partitions`` are up to date."""

    def _open(self, partition: int) -> PartitionStore:
        path = None if self.settings.store != "rocksdb" else self.settings.data_dir / self.name / f"p{partition}"
        try:
            return PartitionStore(path, self.settings)
        except Exception as e:  # noqa: BLE001 - a damaged store is rebuilt from the topics
            if path is None:
                raise
            self.log.warning("%s store p%d unreadable (%s); rebuilding it from the topics",
                             self.name, partition, fault(e))
            shutil.rmtree(path, ignore_errors=True)
            return PartitionStore(path, self.settings)

    async def _restore(self, partitions: list[int]) -> int:
        """Replay the changelog records each store has not applied yet."""
        if not partitions or not self.changelogs:
            return 0
        reader = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False,
                                  max_partition_fetch_bytes=4 * 1024 * 1024)
        await reader.start()
        applied = 0
        try:
            tps = [TopicPartition(t, p) for p in partitions for t in self.changelogs]
            reader.assign(tps)
            ends = await reader.end_offsets(tps)
            starts = await reader.beginning_offsets(tps)
            todo = {}
            for tp in tps:
                start = max(self.stores[tp.partition].offset(tp.topic) or 0, starts[tp])
                if start < ends[tp]:
                    reader.seek(tp, start)
                    todo[tp] = ends[tp]
            last_report = time.monotonic()
            while todo:
                got = await reader.getmany(*todo, timeout_ms=500, max_records=10_000)
                for tp, records in got.items():
                    records = [r for r in records if r.offset < todo[tp]]
                    if not records:
                        continue
                    pending = Pending(self.stores[tp.partition])
                    for r in records:
                        self.restore(pending, r)
                    pending.store.write(pending.items, {tp.topic: records[-1].offset + 1})
                    applied += len(records)
                    if records[-1].offset + 1 >= todo[tp]:
                        del todo[tp]
                if time.monotonic() - last_report > 5:
                    last_report = time.monotonic()
                    self.log.info("%s stage restoring: %d records so far, %d partitions to go",
                                  self.name, applied, len(todo))
        finally:
            await reader.stop()
        return applied


def by_topic(batches: Mapping[TopicPartition, list], order: Iterable[str]) -> list[tuple[TopicPartition, list]]:
    """The batch's non-empty partitions, topics in ``order``."""
    rank = {t: i for i, t in enumerate(order)}
    return sorted(((tp, r) for tp, r in batches.items() if r), key=lambda kv: rank.get(kv[0].topic, len(rank)))
