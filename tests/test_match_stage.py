"""The match stage's own state: what a restart replays, what a new machine
rebuilds from the topics, and how two workers share the partitions.

Real broker, workers as their own processes, the fake Twilio.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from support import event, eventually, phone, registration

from savin.dev.broker import free_port
from savin.dev.testing.worker import WorkerProcess
from savin.topics import partition_for

pytestmark = pytest.mark.e2e


def restored(log_text: str) -> list[int]:
    """The record counts of every "restored N records" line, in order."""
    return [int(n) for n in re.findall(r"restored (\d+) records", log_text)]


async def load(stack, regs: list[str]) -> None:
    report = await stack.import_registrations(regs)
    assert report.errors == []
    await stack.wait_caught_up(stack.topics.registrations)


async def test_a_restart_replays_only_what_the_store_missed(stack):
    worker = stack.start_worker()
    await load(stack, [registration(f"R-{i}", "OFF-1", sms=phone(i)) for i in range(3)])
    worker.stop()
    before = len(restored(worker.tail(100_000)))
    # Registered while the worker was down.
    await stack.import_registrations([registration("R-late", "OFF-1", sms=phone(99))])

    worker = stack.start_worker()
    await stack.publish_events([json.dumps(event("RELEASED", "OFF-1"))])
    assert stack.twilio.wait_for(4, timeout=30)
    assert sorted(m.to for m in stack.twilio.messages) == sorted([phone(0), phone(1), phone(2), phone(99)])
    # The first start had nothing to replay; the restart only the registration it missed.
    counts = restored(worker.tail(100_000))
    assert sum(counts[:before]) == 0 and sum(counts[before:]) == 1, counts


async def test_a_new_machine_rebuilds_registrations_and_seen_events_from_the_topics(stack):
    worker = stack.start_worker()
    await load(stack, [registration(f"R-{i}", f"OFF-{i}", sms=phone(i)) for i in range(8)])
    first = event("RELEASED", "OFF-3")
    await stack.publish_events([json.dumps(first)])
    assert stack.twilio.wait_for(1, timeout=30)
    worker.stop()
    before = len(restored(worker.tail(100_000)))

    shutil.rmtree(stack.workdir / "worker" / "match")  # the local store is gone
    worker = stack.start_worker()
    # 8 registrations and the one batch of seen ids came back from Kafka.
    assert sum(restored(worker.tail(100_000))[before:]) == 9
    await stack.publish_events([json.dumps(first), json.dumps(event("ESCAPED", "OFF-5"))])
    assert stack.twilio.wait_for(2, timeout=30)
    await stack.wait_caught_up(stack.topics.custody_events)
    # The repeated event is still known as seen; the new one matched a rebuilt registration.
    assert [m.to for m in stack.twilio.messages] == [phone(3), phone(5)]
    assert "duplicate event dropped event=" + first["event_id"] in worker.tail(100_000)


async def test_two_workers_split_the_partitions_and_notify_each_victim_once(stack):
    offenders = [f"OFF-{i}" for i in range(12)]
    assert len({partition_for(o.encode(), stack.partitions) for o in offenders}) == stack.partitions
    first = stack.start_worker()
    second = WorkerProcess({**stack.env(), "SAVIN_DATA_DIR": str(stack.workdir / "second")},
                           stack.workdir / "second.log", free_port())
    stack.workers.append(second)
    second.start()
    await load(stack, [registration(f"R-{i}", o, sms=phone(i)) for i, o in enumerate(offenders)])
    await stack.publish_events([json.dumps(event("RELEASED", o)) for o in offenders])
    assert stack.twilio.wait_for(len(offenders), timeout=60)
    await stack.wait_caught_up(stack.topics.custody_events)
    assert sorted(m.to for m in stack.twilio.messages) == sorted(phone(i) for i in range(len(offenders)))
    # Each worker's match stage held some of the partitions.
    held = [re.findall(r"match stage holds partitions \[([\d, ]*)\]", w.tail(100_000))[-1] for w in (first, second)]
    assert all(held), held
    assert sorted(int(p) for h in held for p in h.split(",")) == list(range(stack.partitions))


async def test_misrouted_records_are_forwarded_and_bad_ones_dead_lettered_without_stopping(stack):
    from savin.ops.publishing import registration_encoder
    from savin.sealing import Sealer
    from savin.topics import producer

    s = stack.settings()
    topics = stack.topics
    worker = stack.start_worker(SAVIN_LAG_INTERVAL="0.5")
    offender = "OFF-MISROUTED"
    home = partition_for(offender.encode(), stack.partitions)
    elsewhere = (home + 1) % stack.partitions
    sealed = registration_encoder(Sealer(s.data_keys), s.partitions)(
        registration("R-MIS", offender, sms=phone(7)).encode())
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        # A registration and an event on the wrong partition, an unreadable registration
        # and an event that breaks the schema: each on the partition that must handle it.
        await prod.send_and_wait(topics.registrations, sealed.value, key=sealed.key, partition=elsewhere)
        await prod.send_and_wait(topics.registrations, b'{"registration_id": "R-BAD"}', key=b"R-BAD", partition=home)
        await prod.send_and_wait(topics.custody_events, b'{"event_type": "RELEASED"}', partition=home)
        await stack.wait_caught_up(topics.registrations)
        await prod.send_and_wait(topics.custody_events, json.dumps(event("RELEASED", offender)).encode(),
                                 partition=elsewhere)
    finally:
        await prod.stop()
    assert stack.twilio.wait_for(1, timeout=30)
    assert [m.to for m in stack.twilio.messages] == [phone(7)]
    letters = await stack.dead_letters()
    reasons = sorted(d.reason.split(":")[0] for d in letters)
    assert reasons == ["invalid event", "invalid registration"]
    assert all(d.source_partition == home for d in letters)
    bad_registration = next(d for d in letters if d.reason.startswith("invalid registration"))
    assert "offender_id" in bad_registration.reason and "contacts" in bad_registration.reason
    # Operators see each stage's lag per input partition; all caught up here.
    def caught_up():
        lag = [line for line in worker.metrics().splitlines() if line.startswith("savin_consumer_lag_records{")]
        return (any('stage="match"' in line and 'topic="custody-events"' in line for line in lag)
                and any('stage="deliver"' in line and 'topic="notices.urgent"' in line for line in lag)
                and all(line.endswith(" 0.0") for line in lag))

    await eventually(caught_up, 60, "the lag gauges to show every partition caught up")


async def test_a_worker_joining_and_leaving_mid_stream_loses_and_repeats_nothing(stack):
    offenders = [f"OFF-{i}" for i in range(200)]
    stack.start_worker()
    await load(stack, [registration(f"R-{i}", o, sms=phone(i)) for i, o in enumerate(offenders)])
    second = WorkerProcess({**stack.env(), "SAVIN_DATA_DIR": str(stack.workdir / "second")},
                           stack.workdir / "second.log", free_port())
    stack.workers.append(second)
    events = [json.dumps(event("RELEASED", o)) for o in offenders for _ in range(5)]
    # Five waves of 200 events; the second worker joins after the first and leaves after the third.
    for wave in range(5):
        await stack.publish_events(events[wave * 200:(wave + 1) * 200])
        if wave == 0:
            second.start()
        if wave == 2:
            second.stop()
    delivered = stack.twilio.wait_for(len(events), timeout=60)
    from savin.ops.reading import OffsetWatch
    async with OffsetWatch(stack.bootstrap) as watch:
        jobs = await watch.total(stack.topics.notices_urgent)
        lag = await watch.lag(stack.topics.group("match"), stack.topics.custody_events)
        dlag = await watch.lag(stack.topics.group("deliver"), stack.topics.notices_urgent)
    assert delivered, (len(stack.twilio.messages), jobs, lag, dlag)
    await stack.wait_caught_up(stack.topics.custody_events)
    sent = [m.to for m in stack.twilio.messages]
    assert sorted(set(sent)) == sorted(phone(i) for i in range(len(offenders)))
    assert len(sent) == len(events)  # every event's notice once: none lost, none repeated
