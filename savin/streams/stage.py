"""A stage: one aiokafka consumer group, a batch at a time, with a local store
per partition that is restored from Kafka.

The match and deliver stages are both built on :class:`Stage`. Their input
topics are co-partitioned (same partition count, same key), and the group uses
the range assignor, so a worker holding partition *p* of one input holds
partition *p* of all of them, and the store of partition *p* serves them all.

The machinery owns the bookkeeping: a stage's :meth:`Stage.handle` reads and
changes state through :meth:`Stage.begin`, produces with :meth:`Stage.send`
and marks records handled with :meth:`Stage.done`; the
:class:`~savin.streams.checkpoint.Checkpoint` commits it all in a fixed order
(see :mod:`savin.streams.checkpoint`).

The error policy is one: a record that fails inside :meth:`Stage.guard` goes
to the dead letters with the reason, and the batch goes on. A failure outside
it (the broker, a bug) drops everything since the last commit and rewinds to
it. If the same records fail again after a rewind, the stage goes *careful*:
one record per batch, committed after each, so the record at fault is
isolated; the third failure on that one record dead-letters it and the stage
moves on. Failures of the connection to Kafka never count against a record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError, ProducerClosed, RecordTooLargeError
from mode import Service

from savin import metrics
from savin.domain.clock import utcnow
from savin.settings import Settings
from savin.streams.checkpoint import Checkpoint, Pending
from savin.streams.errors import dead_letter_record, fault, reason_for
from savin.streams.recovery import read_record, restore
from savin.streams.store import Store, open_store
from savin.topics import Topics, partition_for, producer

__all__ = ["Stage", "by_topic"]

#: Commit early when this many records produced since the last commit await acknowledgement.
MAX_UNCOMMITTED = 50_000
#: Failures of the same record (after rewinds) before it is dead-lettered.
STRIKES = 3


def is_transport_fault(e: BaseException) -> bool:
    """A fault of the connection to Kafka, not of the record being handled."""
    if isinstance(e, KafkaError):
        return e.retriable or isinstance(e, (KafkaTimeoutError, ProducerClosed, CommitFailedError))
    return isinstance(e, (asyncio.TimeoutError, ConnectionError, OSError))


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


class _Guard:
    """``async with stage.guard(record, "event"):`` — a failure inside becomes a dead letter."""

    __slots__ = ("stage", "record", "what")

    def __init__(self, stage: Stage, record, what: str):
        self.stage, self.record, self.what = stage, record, what

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception) or is_transport_fault(exc):
            return False
        await self.stage.dead_letter(self.record, reason_for(exc, self.what))
        return True


class _Unread:
    """A record too large to read even on its own: only where it is."""

    def __init__(self, tp: TopicPartition, offset: int):
        self.topic, self.partition, self.offset = tp.topic, tp.partition, offset
        self.key = self.value = None
        self.headers = ()


class Stage(Service):
    """The machinery; subclasses say what a batch does (:meth:`handle`), how a
    changelog record is restored (:meth:`restore`), what goes to the changelogs
    at a commit (:meth:`changelog`) and which entries are past their retention
    (:meth:`expired`)."""

    #: Name of the stage: its stores are ``<data dir>/<name>``, its group ``<namespace>.<name>``.
    name: str = ""

    def __init__(self, settings: Settings, inputs: list[str], changelogs: list[str], commit_interval: float,
                 batch_size: int, fetch_bytes: int = 4 * 1024 * 1024, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings
        self.topics = Topics(settings)
        self.inputs = inputs
        self.changelogs = changelogs
        self.commit_interval = commit_interval
        self._batch_size = batch_size
        self.fetch_bytes = fetch_bytes
        self.lock = asyncio.Lock()
        self.stores: dict[int, Store] = {}
        self.ready = asyncio.Event()
        #: time.monotonic() of the last commit, or of the last batch that left nothing to commit.
        self.last_progress = time.monotonic()
        self.log = logging.getLogger(f"savin.{self.name}")
        n = settings.partitions
        self.home = functools.lru_cache(maxsize=1 << 16)(lambda key: partition_for(key, n))
        self.checkpoint = Checkpoint()
        self._strikes: dict[TopicPartition, tuple[int, int, str]] = {}  # tp -> (offset, failures, last reason)
        self._last_expiry = time.monotonic()
        self._too_large: list[tuple[TopicPartition, int]] = []  # records aiokafka stepped over
        self._stopping = False
        self._task: asyncio.Task | None = None

    # ---- what a stage does ---------------------------------------------------------

    async def handle(self, batches: Mapping[TopicPartition, list]) -> None:
        raise NotImplementedError

    def restore(self, pending: Pending, record) -> None:
        """Apply one changelog record (an aiokafka ``ConsumerRecord``) to the store."""
        raise NotImplementedError

    async def changelog(self, partition: int, pending: Pending) -> list[tuple[str, asyncio.Future]]:
        """Produce this partition's pending state changes; return (topic, ack future) pairs."""
        return []

    def expired(self, store: Store, now) -> Iterable[bytes]:
        """Keys of ``store`` past their retention at ``now``; they are deleted at the next commit."""
        return ()

    async def fetch(self) -> Mapping[TopicPartition, list]:
        return await self.getmany(timeout_ms=100, max_records=self.batch_size)

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int, max_records: int):
        """``consumer.getmany``, noting a record larger than the fetch size (which
        aiokafka reports once and steps over) so that it is dead-lettered, not lost."""
        try:
            return await self.consumer.getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)
        except RecordTooLargeError as e:
            tp, offset = e.args[1], e.args[2]
            self._too_large.append((tp, offset))
            return {}

    async def assigned(self, partitions: set[int]) -> None:
        """Called once the stores of ``partitions`` are up to date."""

    async def tick(self) -> None:
        """Called on every turn of the loop, batch or not, under the stage's lock: for work
        that comes due by the clock (the deliver stage's timers). State it changes goes
        through :meth:`Checkpoint.touch` and is committed like a batch's."""

    @property
    def batch_size(self) -> int:
        """Records per batch: one while the stage is isolating a record at fault."""
        return 1 if self.careful else self._batch_size

    @property
    def careful(self) -> bool:
        return any(failures >= 2 for _, failures, _ in self._strikes.values())

    # ---- lifecycle -------------------------------------------------------------------

    async def on_start(self) -> None:
        s = self.settings
        self.producer = producer(s.kafka_bootstrap, linger_ms=2, max_batch_size=256 * 1024)
        static = {"group_instance_id": f"{s.worker_id}.{self.name}"} if s.worker_id else {}
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.topics.group(self.name),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            max_partition_fetch_bytes=self.fetch_bytes,
            **static,
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
                    if self._too_large:
                        await self._dead_letter_too_large()
                    if batches:
                        if self.careful:
                            batches = await self._set_aside(batches)
                        await self.handle(batches)
                    if self.ready.is_set():
                        await self.tick()
                    self._expire()
                    cp = self.checkpoint
                    if cp.empty:
                        self._progress()
                    elif (self.careful or cp.age() >= self.commit_interval
                          or len(cp.produced_futures) >= MAX_UNCOMMITTED):
                        await self.commit()
            except Exception as e:  # noqa: BLE001 - the stage must outlive a broker outage and a bad record
                async with self.lock:
                    self._failed(e)
                await asyncio.sleep(1.0)

    def _progress(self) -> None:
        self.last_progress = time.monotonic()
        metrics.STAGE_LAST_COMMIT.labels(stage=self.name).set(time.time())

    # ---- what handlers use --------------------------------------------------------------

    def begin(self, tp: TopicPartition, first_offset: int) -> Pending | None:
        """The partition's pending state, noting where a rewind would go; None if not ours."""
        store = self.stores.get(tp.partition)
        if store is None:
            return None  # no longer ours: whoever holds it now will handle these
        return self.checkpoint.begin(tp, first_offset, store)

    def done(self, tp: TopicPartition, next_offset: int) -> None:
        """Everything in ``tp`` before ``next_offset`` is handled."""
        self.checkpoint.done(tp, next_offset)

    def guard(self, record, what: str) -> _Guard:
        """A block whose failure dead-letters ``record`` as an invalid or failed ``what``."""
        return _Guard(self, record, what)

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        self.checkpoint.produced(await self.producer.send(topic, value, key=key, partition=partition))

    async def dead_letter(self, record, reason: str) -> None:
        topic = record.topic.removeprefix(self.settings.namespace + ".")
        metrics.DEAD_LETTERS.labels(topic=topic).inc()
        self.log.warning("dead letter topic=%s partition=%s offset=%s reason=%s",
                         record.topic, record.partition, record.offset, reason)
        await self.send(self.topics.dead_letters, None, dead_letter_record(record, reason))

    # ---- commit, rewind, and the record at fault ---------------------------------------------

    async def commit(self) -> None:
        """Make everything since the last commit durable (:mod:`savin.streams.checkpoint`)."""
        cp = self.checkpoint
        offsets = await cp.commit(self.consumer, self.changelog)
        self.checkpoint = Checkpoint()
        self._progress()
        for tp, offset in offsets.items():
            # The record at fault lies within the batch that failed: until the commits pass
            # that whole batch, the strike follows them (and the stage stays careful).
            if (strike := self._strikes.get(tp)) is not None and strike[0] < offset:
                if offset >= strike[0] + self._batch_size:
                    del self._strikes[tp]
                else:
                    self._strikes[tp] = (offset, *strike[1:])
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as e:
            # A rebalance took the partitions: the next holder repeats these records,
            # which the stores and the ledger recognise.
            self.log.warning("%s stage: commit failed (%s); those records will be handled again",
                             self.name, type(e).__name__)

    def _failed(self, e: Exception) -> None:
        """Drop everything since the last commit and go back to it; count a strike
        against the records there unless the fault was the connection's."""
        went = self.checkpoint.rewind(self.consumer) if not self.checkpoint.empty else {}
        self.checkpoint = Checkpoint()
        metrics.STAGE_REWINDS.labels(stage=self.name).inc()
        if went and not is_transport_fault(e):
            for tp, offset in went.items():
                before, failures, _ = self._strikes.get(tp, (offset, 0, ""))
                self._strikes[tp] = (offset, failures + 1 if before == offset else 1, fault(e))
        self.log.warning("%s stage: %s; repeating everything since the last commit%s", self.name, fault(e),
                         " one record at a time" if self.careful else "")

    async def _set_aside(self, batches: Mapping[TopicPartition, list]) -> Mapping[TopicPartition, list]:
        """Dead-letter a record that has failed :data:`STRIKES` times; hand on the rest."""
        kept = {}
        for tp, records in batches.items():
            strike = self._strikes.get(tp)
            if records and strike is not None and strike[1] >= STRIKES and records[0].offset == strike[0]:
                record, records = records[0], records[1:]
                if self.begin(tp, record.offset) is not None:
                    await self.dead_letter(record, f"failed {strike[1]} times: {strike[2]}")
                    self.done(tp, record.offset + 1)
                del self._strikes[tp]  # the record at fault is found; what follows starts afresh
            if records:
                kept[tp] = records
        return kept

    async def _dead_letter_too_large(self) -> None:
        """Read each record aiokafka stepped over on its own, however large, and dead-letter it."""
        while self._too_large:
            tp, offset = self._too_large[0]
            if self.begin(tp, offset) is not None:
                record = await read_record(self.settings.kafka_bootstrap, tp, offset)
                if record is None:
                    record = _Unread(tp, offset)
                size = len(record.value or b"") if record.value is not None else "unknown"
                await self.dead_letter(record, f"record of {size} bytes is larger than the stage's fetch size "
                                               f"({self.fetch_bytes} bytes)")
                self.done(tp, offset + 1)
            self._too_large.pop(0)

    async def commit_or_rewind(self) -> None:
        if self.checkpoint.empty:
            return
        try:
            await self.commit()
        except Exception as e:  # noqa: BLE001
            self._failed(e)

    # ---- retention ---------------------------------------------------------------------

    def _expire(self) -> None:
        """Every ``SAVIN_EXPIRY_INTERVAL``, mark what each store holds past its retention
        for deletion; the next commit deletes it and writes tombstones to the changelogs."""
        if time.monotonic() - self._last_expiry < self.settings.expiry_interval:
            return
        self._last_expiry = time.monotonic()
        now = utcnow()
        removed = 0
        for partition, store in self.stores.items():
            keys = list(self.expired(store, now))
            if not keys:
                continue
            pending = self.checkpoint.touch(partition, store)
            for key in keys:
                pending.delete(key)
            removed += len(keys)
        if removed:
            metrics.STORE_EXPIRED.labels(stage=self.name).inc(removed)
            self.log.info("%s stage: %d entries past their retention will be removed", self.name, removed)

    # ---- assignment and restore -----------------------------------------------------------

    async def assign(self, partitions: set[int]) -> None:
        """Close stores of partitions gone elsewhere; bring the others up to date."""
        self.ready.clear()
        self._strikes = {tp: s for tp, s in self._strikes.items() if tp.partition in partitions}
        for p in set(self.stores) - partitions:
            self.stores.pop(p).close()
        for p in sorted(partitions):
            if p not in self.stores:
                self.stores[p] = self._open(p)
        started = time.monotonic()
        applied = await restore(self.settings.kafka_bootstrap, self.stores, self.changelogs, self.restore,
                                f"{self.name} stage")
        for topic in set(self.changelogs) & set(self.inputs):
            # An input that is its own changelog continues where the store got to, and the
            # next commit records that, so the group's offsets count the restored records as read.
            for p in partitions:
                tp, offset = TopicPartition(topic, p), self.stores[p].offset(topic) or 0
                self.consumer.seek(tp, offset)
                if offset and self.begin(tp, offset) is not None:
                    self.done(tp, offset)
        self.log.info("%s stage holds partitions %s; restored %d records in %.2f s",
                      self.name, sorted(partitions), applied, time.monotonic() - started)
        await self.assigned(partitions)
        self._progress()
        self.ready.set()

    def _open(self, partition: int) -> Store:
        s = self.settings
        path = s.data_dir / self.name / f"p{partition}" if s.store == "rocksdb" else None

        def damaged(e: Exception) -> None:
            self.log.warning("%s store p%d unreadable (%s); rebuilding it from the topics",
                             self.name, partition, fault(e))

        return open_store(path, s.rocksdb_cache_mb, s.rocksdb_write_buffer_mb, on_damage=damaged)


def by_topic(batches: Mapping[TopicPartition, list], order: Iterable[str]) -> list[tuple[TopicPartition, list]]:
    """The batch's non-empty partitions, topics in ``order``."""
    rank = {t: i for i, t in enumerate(order)}
    return sorted(((tp, r) for tp, r in batches.items() if r), key=lambda kv: rank.get(kv[0].topic, len(rank)))
