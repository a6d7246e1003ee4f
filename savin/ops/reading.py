"""Reading topics without a consumer group: whole topics, end offsets, a group's
lag, and what a lag monitor looks at (committed offsets, who holds each
partition, when the first record behind was produced)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NotCoordinatorError,
    RecordTooLargeError,
)

from savin.domain.lag import Look

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
        self._bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._parts: dict[str, list[TopicPartition]] = {}
        self._reader: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> "OffsetWatch":
        try:
            await self._consumer.start()
            await self._admin.start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        if self._reader is not None:
            await self._reader.stop()
        await self._consumer.stop()
        await self._admin.close()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The partitions of ``topic`` (none if it does not exist)."""
        return list(await self._partitions(topic))

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

    async def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """The offsets ``group_id`` has committed (partitions it never committed are left out)."""
        found = await _coordinated(lambda: self._admin.list_consumer_group_offsets(group_id))
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    async def holders(self, group_id: str) -> dict[TopicPartition, str]:
        """The live member (its client id) holding each partition of ``group_id``, from the group's description."""
        held: dict[TopicPartition, str] = {}
        for response in await _coordinated(lambda: self._admin.describe_consumer_groups([group_id])):
            for group in response.to_object()["groups"]:
                if group["group"] != group_id or group["error_code"] or group["protocol_type"] != "consumer":
                    continue
                for member in group["members"]:
                    if member["member_assignment"]:
                        assignment = ConsumerProtocolMemberAssignment.decode(member["member_assignment"])
                        held.update(dict.fromkeys(assignment.partitions(), member["client_id"]))
        return held

    async def heads(self, positions: Mapping[TopicPartition, int], timeout: float = 2.0) -> dict[TopicPartition, float]:
        """When the record at (or, after compaction, first after) each position was produced,
        in Unix seconds; a partition whose record cannot be read in ``timeout`` is left out."""
        if not positions:
            return {}
        if self._reader is None:
            # Its own consumer: the heads are read by assigning and seeking, which the
            # offset consumer must not do. Small fetches: only the first record is wanted.
            self._reader = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                            auto_offset_reset="earliest", max_partition_fetch_bytes=256 * 1024)
            await self._reader.start()
        reader, found = self._reader, {}
        reader.assign(list(positions))
        for tp, offset in positions.items():
            reader.seek(tp, offset)
        waiting = set(positions)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while waiting and asyncio.get_running_loop().time() < deadline:
                try:
                    got = await reader.getmany(*waiting, timeout_ms=200, max_records=len(waiting) * 10)
                except RecordTooLargeError as e:
                    waiting.discard(e.args[1])
                    continue
                for tp, records in got.items():
                    if records and tp in waiting:
                        waiting.discard(tp)
                        reader.pause(tp)
                        if records[0].timestamp >= 0:
                            found[tp] = records[0].timestamp / 1000
        finally:
            reader.assign([])
        return found

    async def look(self, group_id: str, partitions: Iterable[TopicPartition],
                   live: Collection[TopicPartition] = (), delays: Mapping[str, float] | None = None) -> list[Look]:
        """One look at ``partitions`` for ``group_id``: committed, start and end offsets and
        when the first record behind was produced. ``live`` are the partitions a live member
        holds; ``delays`` the seconds records wait on purpose on a topic (a retry tier)."""
        tps = sorted(partitions)
        if not tps:
            return []
        committed = await self.committed(group_id)
        ends = await self._consumer.end_offsets(tps)
        starts = await self._consumer.beginning_offsets(tps)
        delays = delays or {}
        looks = [Look(group_id, tp.topic, tp.partition, committed.get(tp), starts[tp], ends[tp], live=tp in live,
                      delay=delays.get(tp.topic, 0.0)) for tp in tps]
        heads = await self.heads({TopicPartition(k.topic, k.partition): k.position for k in looks if k.lag})
        return [replace(k, head_at=heads.get(TopicPartition(k.topic, k.partition))) if k.lag else k
                for k in looks]


async def _coordinated(ask, tries: int = 20, pause: float = 0.5):
    """A group coordinator request, asked again while the coordinator is not yet there
    (a new cluster creates its offsets topic on the first group request)."""
    for n in range(tries):
        try:
            return await ask()
        except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
            if n + 1 == tries:
                raise
            await asyncio.sleep(pause)
