"""What a stage has done since its last commit, and the commit itself.

A stage's handler reads and changes state through a partition's
:class:`Pending` (read through to the store), hands what it produces to
:meth:`Checkpoint.produced`, and says how far it got with
:meth:`Checkpoint.done`. Nothing reaches the store or the consumer's committed
offsets until :meth:`Checkpoint.commit`, which goes in this order:

1. wait until Kafka has acknowledged everything produced since the last commit;
2. write the changed state to the stage's changelog topic(s) and wait for those;
3. write the state and every topic's next offset to each partition's store in
   one atomic write;
4. commit the consumer offsets.

A failure anywhere leaves the store and the committed offsets where they were;
:meth:`Checkpoint.rewind` then sends the consumer back to the first record
handled since, so the work is done again with the same results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from savin.streams.store import Store

__all__ = ["Pending", "Checkpoint", "Changelog"]

_MISSING = object()


class Pending:
    """What one partition has changed since the last commit: read through to
    the store, written to it at the commit. A value of ``None`` is a delete."""

    def __init__(self, store: Store):
        self.store = store
        self.items: dict[bytes, bytes | None] = {}
        self.offsets: dict[str, int] = {}

    def get(self, key: bytes) -> bytes | None:
        value = self.items.get(key, _MISSING)
        return self.store.get(key) if value is _MISSING else value  # type: ignore[return-value]

    def put(self, key: bytes, value: bytes) -> None:
        self.items[key] = value

    def delete(self, key: bytes) -> None:
        self.items[key] = None

    def flush(self) -> None:
        """Write what is pending to the store (for restore, which has no commit)."""
        self.store.write(self.items, self.offsets)
        self.items, self.offsets = {}, {}


#: (partition, its pending changes) -> the (topic, acknowledgement) of each changelog record produced.
Changelog = Callable[[int, Pending], Awaitable[list[tuple[str, asyncio.Future]]]]


class Checkpoint:
    """One stage's uncommitted work: pending state per partition, produced
    records awaiting acknowledgement, offsets to commit and to rewind to."""

    def __init__(self) -> None:
        self.pending: dict[int, Pending] = {}
        self.produced_futures: list[asyncio.Future] = []
        self.offsets: dict[TopicPartition, int] = {}  # next offset to commit
        self.starts: dict[TopicPartition, int] = {}  # first offset handled since the last commit
        self.touched = False  # state changed without any input record (retention)
        self.opened = time.monotonic()

    @property
    def empty(self) -> bool:
        return not self.starts and not self.touched

    def age(self) -> float:
        return time.monotonic() - self.opened

    def begin(self, tp: TopicPartition, first_offset: int, store: Store) -> Pending:
        """The partition's pending state, noting where a rewind would go."""
        self.starts.setdefault(tp, first_offset)
        pending = self.pending.get(tp.partition)
        if pending is None:
            pending = self.pending[tp.partition] = Pending(store)
        return pending

    def touch(self, partition: int, store: Store) -> Pending:
        """The partition's pending state, for a change no input record caused."""
        self.touched = True
        pending = self.pending.get(partition)
        if pending is None:
            pending = self.pending[partition] = Pending(store)
        return pending

    def done(self, tp: TopicPartition, next_offset: int) -> None:
        """Everything in ``tp`` before ``next_offset`` is handled."""
        self.offsets[tp] = next_offset
        if (pending := self.pending.get(tp.partition)) is not None:
            pending.offsets[tp.topic] = next_offset

    def produced(self, ack: asyncio.Future) -> None:
        self.produced_futures.append(ack)

    async def commit(self, consumer: AIOKafkaConsumer, changelog: Changelog) -> dict[TopicPartition, int]:
        """Make everything durable in the order of the module docstring; returns
        the offsets to commit, which the caller commits (step 4)."""
        if self.produced_futures:  # 1
            await asyncio.gather(*self.produced_futures)
        sent = []  # 2
        for partition, pending in self.pending.items():
            sent.extend((pending, topic, ack) for topic, ack in await changelog(partition, pending))
        for pending, topic, ack in sent:
            offset = (await ack).offset + 1
            pending.offsets[topic] = max(offset, pending.offsets.get(topic, 0))
        for pending in self.pending.values():  # 3
            pending.store.write(pending.items, pending.offsets)
        return self.offsets

    def rewind(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """Send the consumer back to the first record handled since the last
        commit, on each partition it still holds; returns where it went."""
        assigned = consumer.assignment()
        went = {tp: offset for tp, offset in self.starts.items() if tp in assigned}
        for tp, offset in went.items():
            consumer.seek(tp, offset)
        return went
