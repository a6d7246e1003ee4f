"""The console's lag watch on the real broker: a backlog on stages nobody runs is
STOP; once a worker runs them the lag drains to 0, every group is OK, and the
throughput shows the records committed meanwhile. A broker that cannot be reached
is logged and looked for again, never raised."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import pytest
from support import event, eventually, phone, registration

from savin.dev.broker import free_port
from savin.domain.lag import WINDOW, Status
from savin.settings import load_settings
from savin.web.console.lagwatch import LagWatch, committed_since

pytestmark = pytest.mark.e2e

INTERVAL = "0.5"


class RecordingWatch(LagWatch):
    """A lag watch that keeps every look's throughput."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[dict[str, float]] = []

    async def look(self) -> None:
        await super().look()
        self.seen.append(dict(self.throughput))


@contextlib.asynccontextmanager
async def running(watch: LagWatch):
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_committed_since_counts_only_partitions_both_looks_saw():
    assert committed_since({("a", 0): 5, ("a", 1): 9}, {("a", 0): 12, ("a", 1): 7, ("a", 2): 100}) == 7


async def test_a_backlog_nobody_reads_is_stop_then_drains_to_zero_with_throughput(stack):
    stack.worker_env["SAVIN_LAG_INTERVAL"] = INTERVAL
    offenders = [f"OFF-{i}" for i in range(20)]
    report = await stack.import_registrations([registration(f"R-{i}", o, sms=phone(500 + i))
                                               for i, o in enumerate(offenders)])
    assert report.errors == []
    await stack.publish_events([json.dumps(event("RELEASED", o)) for o in offenders])

    watch = RecordingWatch(stack.settings())
    assert watch.interval == 0.5 and watch.groups == {} and watch.looked_at is None
    async with running(watch):
        async def stopped():
            return watch.groups.get("match") is not None and watch.groups["match"].status is Status.STOP

        await eventually(stopped, 30, "the match group to be STOP")
        match = watch.groups["match"]
        assert set(watch.groups) == {"match", "deliver", "status"}
        assert sum(p.lag for p in match.partitions) == 2 * len(offenders)
        assert {p.topic for p in match.partitions} == set(stack.topics.stage_inputs("match"))
        assert len(match.partitions) == 2 * stack.partitions  # every partition, held or not
        assert watch.groups["status"].status is Status.STOP
        assert "records behind" in match.worst.reason
        assert len(watch.seen) >= WINDOW and all(t.get("match", 0) == 0 for t in watch.seen)
        assert watch.looked_at is not None

        stack.start_worker()
        assert await asyncio.to_thread(stack.twilio.wait_for, len(offenders), 60)

        async def drained():
            return all(g.status is Status.OK and all(p.lag == 0 for p in g.partitions)
                       for g in watch.groups.values())

        await eventually(drained, 60, "every group caught up and OK")
        assert set(watch.groups) == {"match", "deliver", "status"}
        assert all(p.seconds == 0 for g in watch.groups.values() for p in g.partitions)
        assert max(t.get("match", 0) for t in watch.seen) > 0
        assert max(t.get("deliver", 0) for t in watch.seen) > 0
        # Once drained, nothing more is committed.
        await asyncio.sleep(1.5)
        assert watch.throughput == {"match": 0.0, "deliver": 0.0, "status": 0.0}


async def test_a_broker_that_cannot_be_reached_is_logged_and_tried_again(monkeypatch, caplog):
    monkeypatch.setenv("SAVIN_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("SAVIN_LAG_INTERVAL", "0.2")
    watch = LagWatch(load_settings(_env_file=None))
    caplog.set_level(logging.WARNING, logger="savin.web.console.lag")
    async with running(watch) as w:
        await eventually(lambda: w.failures >= 2, 30, "two failed looks")
    assert watch.groups == {} and watch.looked_at is None
    assert "consumer lag not read" in caplog.text
