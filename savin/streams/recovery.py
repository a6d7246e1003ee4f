"""Bringing a partition's store up to date from its changelog topics.

On assignment each store replays, for each changelog, the records from the
offset it has reached to the end offset taken at the start, so a restart
replays only what it missed and a worker on a new machine rebuilds the
partition from Kafka. A record that cannot be applied is skipped: it was
dead-lettered when it was first consumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import RecordTooLargeError

from savin.streams.checkpoint import Pending
from savin.streams.errors import fault
from savin.streams.store import Store

__all__ = ["restore", "read_record", "LARGEST_RECORD"]

#: The largest record savin reads whole to dead-letter it (a topic may allow larger).
LARGEST_RECORD = 64 * 1024 * 1024

log = logging.getLogger("savin.recovery")


async def restore(bootstrap: str, stores: Mapping[int, Store], changelogs: list[str],
                  apply: Callable[[Pending, object], None], what: str = "stage") -> int:
    """Replay what each store has not applied yet; returns the records applied."""
    if not stores or not changelogs:
        return 0
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              max_partition_fetch_bytes=4 * 1024 * 1024)
    await reader.start()
    applied = skipped = 0
    try:
        tps = [TopicPartition(t, p) for p in sorted(stores) for t in changelogs]
        reader.assign(tps)
        ends = await reader.end_offsets(tps)
        starts = await reader.beginning_offsets(tps)
        todo = {}
        for tp in tps:
            start = max(stores[tp.partition].offset(tp.topic) or 0, starts[tp])
            if start < ends[tp]:
                reader.seek(tp, start)
                todo[tp] = ends[tp]
        last_report = time.monotonic()
        while todo:
            try:
                got = await reader.getmany(*todo, timeout_ms=500, max_records=10_000)
            except RecordTooLargeError as e:
                # aiokafka has stepped over it; it is dead-lettered where it is consumed.
                log.warning("%s restore skipped a record larger than the fetch size: %s", what, e.args[1:3])
                continue
            if not got:
                # Compaction can leave the last offsets before the end empty.
                for tp in list(todo):
                    if await reader.position(tp) >= todo[tp]:
                        del todo[tp]
            for tp, records in got.items():
                records = [r for r in records if r.offset < todo[tp]]
                if not records:
                    continue
                pending = Pending(stores[tp.partition])
                for r in records:
                    try:
                        apply(pending, r)
                    except Exception as e:  # noqa: BLE001 - one bad record must not stop a restore
                        skipped += 1
                        log.warning("%s restore skipped topic=%s partition=%s offset=%s: %s",
                                    what, r.topic, r.partition, r.offset, fault(e))
                pending.offsets[tp.topic] = records[-1].offset + 1
                pending.flush()
                applied += len(records)
                if records[-1].offset + 1 >= todo[tp]:
                    del todo[tp]
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                log.info("%s restoring: %d records so far, %d partitions to go", what, applied, len(todo))
    finally:
        await reader.stop()
    return applied


async def read_record(bootstrap: str, tp: TopicPartition, offset: int, max_bytes: int = LARGEST_RECORD):
    """The record at ``offset`` of ``tp`` however large (up to ``max_bytes``), or None."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              max_partition_fetch_bytes=max_bytes, fetch_max_bytes=max_bytes)
    await reader.start()
    try:
        reader.assign([tp])
        reader.seek(tp, offset)
        for _ in range(10):
            try:
                got = await reader.getmany(tp, timeout_ms=1000, max_records=1)
            except RecordTooLargeError:
                return None
            for record in got.get(tp, []):
                return record if record.offset == offset else None
        return None
    finally:
        await reader.stop()
