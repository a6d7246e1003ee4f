"""Stores forget: a seen event id and a final ledger entry past their retention
leave the local store, the ledger entry is tombstoned in ``deliver-state``, and
neither a restart nor a rebuild on a new machine brings them back. Real broker,
the worker as its own process."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from support import event, eventually, registration

from savin.dev.testing.fake_twilio import FakeTwilio
from savin.ops.reading import read_topic
from savin.streams.store import RocksStore

pytestmark = pytest.mark.e2e

RETENTION_S = 4.0


def expired_count(metrics_text: str, stage: str) -> float:
    found = re.search(rf'^savin_store_expired_total{{stage="{stage}"}} (\S+)$', metrics_text, re.M)
    return float(found.group(1)) if found else 0.0


def stored_keys(data_dir: Path, stage: str, prefix: bytes) -> set[bytes]:
    keys: set[bytes] = set()
    for path in sorted((data_dir / stage).glob("p*")):
        store = RocksStore(path)
        try:
            keys |= {k for k, _ in store.scan(prefix)}
        finally:
            store.close()
    return keys


async def test_seen_ids_and_final_ledger_entries_past_retention_are_forgotten_for_good(stack):
    days = str(RETENTION_S / 86_400)
    stack.worker_env.update(SAVIN_DEDUP_DAYS=days, SAVIN_LEDGER_RETENTION_DAYS=days, SAVIN_EXPIRY_INTERVAL="1")
    data_dir = stack.workdir / "worker"
    worker = stack.start_worker()
    refused = next(n for n, c in FakeTwilio.FAULT_NUMBERS.items() if c == 21211)  # a final "failed" at once
    report = await stack.import_registrations([registration("R-1", "O-1", sms=refused)])
    assert report.errors == []
    released = event("RELEASED", "O-1")
    await stack.publish_events([json.dumps(released)])

    async def failed():
        return next((r for r in await stack.results() if r.status.value == "failed"), None)

    result = await eventually(failed, 60, "the notice to fail")
    seen_key = b"s:" + released["event_id"].encode()
    ledger_key = b"l:" + str(result.notice_id).encode()

    async def swept():
        text = worker.metrics()
        return expired_count(text, "match") >= 1 and expired_count(text, "deliver") >= 1

    await eventually(swept, 60, "both stages to sweep their stores")

    async def tombstoned():
        last = None
        async for record in read_topic(stack.bootstrap, stack.topics.deliver_state):
            if record.key == ledger_key:
                last = record
        return last is not None and last.value is None

    await eventually(tombstoned, 30, "a tombstone for the ledger entry in deliver-state")
    worker.stop()
    assert seen_key not in stored_keys(data_dir, "match", b"s:")
    assert ledger_key not in stored_keys(data_dir, "deliver", b"l:")

    stack.start_worker().stop()  # a restart on the same machine
    assert seen_key not in stored_keys(data_dir, "match", b"s:")
    assert ledger_key not in stored_keys(data_dir, "deliver", b"l:")

    shutil.rmtree(data_dir)  # a new machine: everything rebuilt from the topics
    stack.start_worker().stop()
    assert stored_keys(data_dir, "match", b"s:") == set()
    assert ledger_key not in stored_keys(data_dir, "deliver", b"l:")
