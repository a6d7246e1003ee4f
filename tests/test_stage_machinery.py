"""The stage machinery against the real broker, with a stage whose handler
fails on one record outside any guard (as a bug would): the stage isolates the
record, dead-letters it after three failures and moves on."""

from __future__ import annotations

import asyncio
import time

from savin import metrics
from savin.ops.reading import read_topic
from savin.schemas import DeadLetter
from savin.settings import load_settings
from savin.streams.stage import STRIKES, Stage
from savin.topics import Topics, TopicSpec, ensure_topics, producer


class Copy(Stage):
    """Copies each record to another topic, and breaks on ``boom``."""

    name = "copy"

    def __init__(self, settings, source: str, target: str):
        super().__init__(settings, inputs=[source], changelogs=[], commit_interval=0.2, batch_size=50)
        self.target = target

    async def handle(self, batches) -> None:
        for tp, records in batches.items():
            self.begin(tp, records[0].offset)
            for r in records:
                if r.value == b"boom":
                    raise RuntimeError("boom")
                await self.send(self.target, r.key, r.value)
            self.done(tp, records[-1].offset + 1)


async def test_a_record_that_fails_again_after_rewinds_is_dead_lettered_and_the_rest_flow(
        kafka_bootstrap, namespace, tmp_path):
    settings = load_settings(kafka_bootstrap=kafka_bootstrap, namespace=namespace, partitions=1, store="memory",
                             data_dir=tmp_path)
    topics = Topics(settings)
    source, target = settings.topic("copy-in"), settings.topic("copy-out")
    await ensure_topics(kafka_bootstrap, [TopicSpec(source, 1), TopicSpec(target, 1), *topics.specs()])
    values = [f"v{i}".encode() for i in range(100)]
    values[50] = b"boom"
    prod = producer(kafka_bootstrap)
    await prod.start()
    try:
        for v in values:
            await prod.send(source, v, key=b"k")
        await prod.flush()
    finally:
        await prod.stop()

    rewinds_before = metrics.STAGE_REWINDS.labels(stage="copy")._value.get()
    stage = Copy(settings, source, target)
    await stage.start()
    try:
        good = {v for v in values if v != b"boom"}
        deadline = time.monotonic() + 60
        while True:
            copied = {r.value async for r in read_topic(kafka_bootstrap, target)}
            if copied >= good or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await stage.stop()

    assert copied == good, f"{len(good - copied)} good records never copied"
    letters = [DeadLetter.model_validate_json(r.value) async for r in read_topic(kafka_bootstrap, topics.dead_letters)]
    assert [(d.source_topic, d.source_offset) for d in letters] == [(source, 50)]
    assert letters[0].reason == "failed 3 times: RuntimeError: boom"
    # Three failures of the record alone, plus at most the ones before its batch was isolated
    # (a commit between two tries of a batch starts the count afresh).
    rewinds = metrics.STAGE_REWINDS.labels(stage="copy")._value.get() - rewinds_before
    assert STRIKES <= rewinds <= STRIKES + 2, rewinds
