"""Reading topics without a consumer group: whole topics, end offsets, a group's lag."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["read_topic", "Record", "group_lag", "end_offsets", "topic_partitions", "wait_until", "OffsetWatch"]


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes], ...] = ()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await consumer.end_offsets(tps) if tps else {}
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str, idle_timeout: float = 1.0) -> AsyncIterator[Record]:
    """Every record currently in ``topic``, from the beginning to the end offsets
    taken at the start; no consumer group, nothing committed."""
    ends = await end_offsets(bootstrap, topic)
    if not any(ends.values()):
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp.partition] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=int(idle_timeout * 1000), max_records=5000)
            if not batch:
                # Compaction or transactions can leave gaps up to the end offset.
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp.partition]:
                        remaining.discard(tp)
                continue
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.offset < ends[tp.partition]:
                        yield Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp,
                                     tuple(m.headers or ()))
                if msgs and msgs[-1].offset + 1 >= ends[tp.partition]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def topic_partitions(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """The partition count of each of ``topics`` that exists (asking never creates one)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        wanted = set(topics) & set(await admin.list_topics())
        described = await admin.describe_topics(sorted(wanted)) if wanted else []
        return {d["topic"]: len(d["partitions"]) for d in described if d["topic"] in wanted}
    finally:
        await admin.close()


async def group_lag(bootstrap: str, group_id: str, topics: Iterable[str]) -> dict[str, int]:
    """Messages not yet committed by ``group_id``, per topic."""
    async with OffsetWatch(bootstrap) as watch:
        return {topic: await watch.lag(group_id, topic) for topic in topics}


async def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Await an async predicate until it returns truthy; raise TimeoutError naming ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


class OffsetWatch:
    """A long-lived connection for polling topic sizes and a group's lag cheaply."""

    def __init__(self, bootstrap: str):
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._parts: dict[str, list[TopicPartition]] = {}

    async def __aenter__(self) -> "OffsetWatch":
        try:
            await self._consumer.start()
            await self._admin.start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        if topic not in self._parts:
            parts = self._consumer.partitions_for_topic(topic)
            if parts is None:
                await self._consumer._client.force_metadata_update()
                parts = self._consumer.partitions_for_topic(topic) or set()
            if not parts:
                return []
            self._parts[topic] = [TopicPartition(topic, p) for p in sorted(parts)]
        return self._parts[topic]

    async def ends(self, topic: str) -> dict[TopicPartition, int]:
        tps = await self._partitions(topic)
        return await self._consumer.end_offsets(tps) if tps else {}

    async def total(self, *topics: str) -> int:
        """Messages ever written to ``topics`` (sum of end offsets)."""
        return sum([sum((await self.ends(t)).values()) for t in topics])

    async def lag(self, group_id: str, *topics: str) -> int:
        committed = await self._admin.list_consumer_group_offsets(group_id)
        lag = 0
        for topic in topics:
            for tp, end in (await self.ends(topic)).items():
                meta = committed.get(tp)
                lag += max(0, end - (meta.offset if meta is not None and meta.offset >= 0 else 0))
        return lag
