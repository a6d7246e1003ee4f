"""No record can stall a partition: oversized and random records on every
input topic are dead-lettered once each, within the producer's limits, and the
valid records around them are notified. Real broker, the worker as its own
process."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os

import pytest
from support import event, metric, phone, registration

from savin.topics import ensure_topics, partition_for, producer

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


def junk(size: int) -> list[bytes]:
    """A 1 MB JSON event with a field far too long, ``size`` random bytes, and a little noise."""
    doc = event("RELEASED", "O-0")
    doc["offender_name"] = "x" * MB
    return [json.dumps(doc).encode(), os.urandom(size), os.urandom(200)]


async def test_oversized_and_random_records_are_dead_lettered_and_the_rest_flows(stack):
    topics = stack.topics
    roomy = {topics.custody_events, topics.registrations, topics.notices_urgent, topics.notices_routine}
    # The worker finds these topics already there, with room for 5 MB records.
    await ensure_topics(stack.bootstrap, [
        dataclasses.replace(s, config={**s.config, "max.message.bytes": str(8 * MB)}) if s.name in roomy else s
        for s in topics.specs()])
    worker = stack.start_worker()
    n = 6
    prod = producer(stack.bootstrap, max_request_size=8 * MB)
    await prod.start()
    bad: dict[tuple[str, int, int], bytes] = {}

    async def poison(topic: str, key: bytes, partition: int | None = None) -> None:
        for value in junk(5 * MB):
            meta = await prod.send_and_wait(topic, value, key=key, partition=partition)
            bad[(topic, meta.partition, meta.offset)] = value

    try:
        for i in range(n):  # on the partitions the valid records use, ahead of them
            await poison(topics.registrations, f"R-{i}".encode(), partition_for(f"O-{i}".encode(), stack.partitions))
            await poison(topics.notices_urgent, f"R-{i}".encode())
            await poison(topics.notices_routine, f"R-{i}".encode())
        report = await stack.import_registrations([registration(f"R-{i}", f"O-{i}", sms=phone(i)) for i in range(n)])
        assert report.errors == []
        for i in range(n):
            await poison(topics.custody_events, f"O-{i}".encode())
            await prod.send_and_wait(topics.custody_events, json.dumps(event("RELEASED", f"O-{i}")).encode(),
                                     key=f"O-{i}".encode())
    finally:
        await prod.stop()

    assert stack.twilio.wait_for(n, timeout=90), f"{len(stack.twilio.messages)} of {n} notices sent"
    assert sorted(m.to for m in stack.twilio.messages) == sorted(phone(i) for i in range(n))
    for topic in (topics.custody_events, topics.registrations, topics.notices_urgent, topics.notices_routine):
        await stack.wait_caught_up(topic, timeout=60)

    letters = await stack.dead_letters()
    where = [(d.source_topic, d.source_partition, d.source_offset) for d in letters]
    assert sorted(where) == sorted(bad), "every bad record dead-lettered exactly once"
    for d in letters:
        original = bad[(d.source_topic, d.source_partition, d.source_offset)]
        assert d.value_size == len(original)
        assert d.value_sha256 == hashlib.sha256(original).hexdigest()
        excerpt = base64.b64decode(d.value_b64)
        assert original.startswith(excerpt)
        assert d.value_truncated == (len(excerpt) < len(original))
        assert len(d.model_dump_json()) < MB, "a dead letter stays within the producer's limit"
    metrics = worker.metrics()
    assert metric(metrics, "savin_stage_rewinds_total") == 0, "no stage went back to its last commit"
    assert metric(metrics, "savin_dead_letters_total") == len(bad)
